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


def test_a_null_estimate_is_counted_not_scored() -> None:
    """An estimator that cannot answer (``None`` with a reason, e.g. no logged action the
    target supports) is neither an error of 0 nor a crash: the summary scores the runs
    with an estimate and counts the others, and the report says so."""
    from simulator.ope_check import ErrorRow, ValidationResult
    from simulator.report import render_html

    rows = (
        ErrorRow(0, 100, "t", "snips", None, None, None, 0.5, "no support"),
        ErrorRow(1, 100, "t", "snips", 0.6, 0.4, 0.8, 0.5),
        ErrorRow(0, 100, "t", "ips", None, None, None, 0.5, "no support"),
    )
    result = ValidationResult(rows, "uniform")
    assert not rows[0].estimable and np.isnan(rows[0].error) and not rows[0].covered
    summary = result.summary()["100"]
    assert summary["snips"]["runs"] == 1 and summary["snips"]["not_estimable"] == 1
    assert abs(summary["snips"]["bias"] - 0.1) < 1e-12 and summary["snips"]["coverage"] == 1.0
    assert summary["ips"]["runs"] == 0 and summary["ips"]["not_estimable"] == 1
    assert np.isnan(summary["ips"]["rmse"]) and np.isnan(result.rmse("ips", 100))
    assert abs(result.rmse("snips", 100) - 0.1) < 1e-12
    page = render_html(
        {"policies": {}, "ope": {"by_size": result.summary(), "logging_policy": "uniform",
                                 "targets": ["t"],
                 "seeds": [0, 1]}},
        {},
    )
    assert "ips (1 runs not estimable)" in page and "n/a" in page
