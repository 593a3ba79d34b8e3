"""Running policies in the simulator: online learning, logs, and learning that pays."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from policies.baselines import UniformPolicy
from policies.types import LoggedBatch
from simulator.environment import EnvConfig, JourneyEnvironment
from simulator.errors import InvalidSimulationConfig
from simulator.run import build_policy, compare, run_policy


class _CountingUniform(UniformPolicy):
    """Uniform policy that records the batches it is taught (a fake for a unit test)."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def learn(self, batch: LoggedBatch) -> None:
        self.batches.append(len(batch))


def test_policy_learns_online_in_small_batches(small_env: JourneyEnvironment) -> None:
    policy = _CountingUniform()
    log = run_policy(policy, small_env, 100, seed=1, learn_every=32)
    assert policy.batches == [32, 32, 32, 4]
    assert len(log) == 100
    frozen = _CountingUniform()
    run_policy(frozen, small_env, 50, seed=1, learn=False)
    assert frozen.batches == []


def test_run_log_is_consistent(small_env: JourneyEnvironment) -> None:
    log = run_policy(build_policy("rules", small_env.catalog, 0), small_env, 600, seed=2,
                     keep_batch=True)
    assert np.all(log.regret >= -1e-12)
    assert np.all((log.probabilities > 0) & (log.probabilities <= 1))
    assert log.batch is not None and log.truths is not None and len(log.batch) == 600
    for acts, truth, exp, idx in zip(log.batch.actions, log.truths, log.expected,
                                     log.batch.chosen, strict=True):
        assert len(truth) == len(acts)
        assert truth[int(idx)] == pytest.approx(exp)
    s = log.summary()
    assert s["steps"] == 600
    assert sum(s["channel_mix"].values()) == pytest.approx(1.0)
    assert sum(d["n"] for d in s["by_decision_point"].values()) == 600
    assert s["regret"] == pytest.approx(float(log.regret.sum()))
    ends, mix = log.channel_mix(10)
    assert len(ends) == 10 and ends[-1] == 600
    assert np.allclose(sum(mix.values()), 1.0)


def test_same_seed_same_run(small_env: JourneyEnvironment) -> None:
    a = run_policy(build_policy("vw-cb", small_env.catalog, 3), small_env, 300, seed=3)
    b = run_policy(build_policy("vw-cb", small_env.catalog, 3), small_env, 300, seed=3)
    assert list(a.action_ids) == list(b.action_ids)
    assert np.array_equal(a.rewards, b.rewards)


def test_bad_run_settings_raise(small_env: JourneyEnvironment) -> None:
    with pytest.raises(InvalidSimulationConfig):
        run_policy(UniformPolicy(), small_env, 0)


def _regrets(kinds: Sequence[str], steps: int, seed: int) -> dict[str, float]:
    env = JourneyEnvironment(EnvConfig(customers=1000))
    runs = compare(kinds, env, steps, seed=seed, show_progress=False)
    return {k: float(log.regret.sum()) for k, (log, _) in runs.items()}


def test_vw_cb_ends_with_less_regret_than_uniform_and_rules() -> None:
    regret = _regrets(["uniform", "rules", "vw-cb"], 16_000, seed=1)
    assert regret["vw-cb"] < regret["rules"] < regret["uniform"]
