"""Off-policy estimates in the simulator, checked against the exact truth."""

from __future__ import annotations

import numpy as np

from simulator.environment import JourneyEnvironment
from simulator.ope_check import validate
from simulator.run import build_policy, run_policy


def test_ope_error_shrinks_as_logged_data_grow(small_env: JourneyEnvironment) -> None:
    learned = build_policy("linucb", small_env.catalog, 5)
    run_policy(learned, small_env, 1500, seed=50)  # trained, then frozen as a target
    targets = {"rules": build_policy("rules", small_env.catalog, 0), "linucb": learned}
    result = validate(small_env, targets, sizes=(100, 1600), seeds=(0, 1, 2, 3),
                      estimators=("ips", "snips", "dm", "dr"))
    for name in ("ips", "snips", "dr"):
        small, large = result.rmse(name, 100), result.rmse(name, 1600)
        assert large < 0.6 * small, (name, small, large)
    summary = result.summary()
    assert set(summary) == {"100", "1600"}
    assert set(summary["1600"]) == {"ips", "snips", "dm", "dr"}
    assert all(v["biased"] == 0.0 for v in summary["1600"].values())  # none clips or switches
    # unbiased IPS: its bias over 8 runs is small next to its per-run error at n=100
    assert abs(summary["1600"]["ips"]["bias"]) < summary["100"]["ips"]["rmse"]
    # the truth is each target's exact value on the logged rounds
    truths = {r.truth for r in result.rows if r.target == "rules" and r.n == 1600}
    assert len(truths) == 4 and all(np.isfinite(list(truths)))
