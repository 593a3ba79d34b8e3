"""The preference flip of the simulator and the drift trial run over it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from policies.draw import decide_among, seed_from_event_id
from simulator.environment import EnvConfig, JourneyEnvironment
from simulator.errors import InvalidSimulationConfig
from simulator.regime import DriftTrial, PreferenceFlip, run_drift_trial
from simulator.run import build_policy


def _env() -> JourneyEnvironment:
    return JourneyEnvironment(EnvConfig(customers=300))


def _decide(policy, obs, t: int):
    return decide_among(policy, obs.context, obs.eligible, obs.excluded,
                        seed_from_event_id(f"e-{t}"), f"e-{t}")  # fmt: skip


def test_after_the_flip_the_best_action_earns_what_the_worst_did() -> None:
    env = _env()
    flip = PreferenceFlip(env, at_step=0)
    obs = flip.reset(seed=3)
    while len(obs.eligible) < 3:  # a decision with a real choice
        obs = env.step(_decide(build_policy("uniform", env.catalog, 0), obs, 0)).next_observation
    truth = env.expected_rewards()
    flipped = flip.expected_rewards()
    idx = [int(i) for i in obs.eligible_index]
    assert sorted(truth[idx]) == pytest.approx(sorted(flipped[idx]), abs=1e-12)
    best = max(idx, key=lambda i: truth[i])
    worst = min(idx, key=lambda i: truth[i])
    assert flipped[best] == pytest.approx(truth[worst], abs=1e-12)
    # choosing the old best is now the worst choice, and the regret says so exactly
    policy = build_policy("rules", env.catalog, 0)
    decision = _decide(policy, obs, 1)
    forced = dataclasses.replace(decision, action=obs.candidates[best])
    result = flip.step(forced)
    assert result.action.id == obs.candidates[best].id
    assert result.expected_rewards[result.chosen] == pytest.approx(truth[worst], abs=1e-12)
    assert result.regret == pytest.approx(truth[best] - truth[worst], abs=1e-12)


def test_before_the_flip_the_world_is_the_wrapped_one() -> None:
    plain, wrapped = _env(), PreferenceFlip(_env(), at_step=40)
    policy = build_policy("uniform", plain.catalog, 0)
    a, b = plain.reset(seed=9), wrapped.reset(seed=9)
    for t in range(40):
        ra, rb = plain.step(_decide(policy, a, t)), wrapped.step(_decide(policy, b, t))
        assert ra.reward == rb.reward and ra.action.id == rb.action.id
        np.testing.assert_array_equal(ra.expected_rewards, rb.expected_rewards)
        a, b = ra.next_observation, rb.next_observation
    assert wrapped.flipped


def test_a_negative_flip_step_is_refused() -> None:
    with pytest.raises(InvalidSimulationConfig, match="at_step"):
        PreferenceFlip(_env(), at_step=-1)


def test_recovery_delay_and_false_alarms_of_a_trial() -> None:
    regret = np.r_[np.full(2000, 1.0), np.full(500, 3.0), np.full(1500, 1.05)]
    trial = DriftTrial(regret, alarms=[100, 2040, 2300], change_at=2000, watch_from=0)
    assert trial.delay == 40 and trial.false_alarms == 1 and trial.watched == 2000
    # the 1000-step mean is back within 10% of 1.0 once the 3.0s have left the window
    assert trial.recovery(window=1000) == 1500
    assert DriftTrial(np.r_[np.full(2000, 1.0), np.full(2000, 3.0)], [], 2000).recovery() is None
    assert DriftTrial(regret, [5], None).false_alarms == 1


def test_a_flip_raises_the_residual_alarm_and_none_before_it() -> None:
    env = JourneyEnvironment(EnvConfig(customers=1000))
    policy = build_policy("vw-cb", env.catalog, 0)
    trial = run_drift_trial(policy, PreferenceFlip(env, 8000), 12000, seed=1, watch_from=4000)
    assert trial.watched == 4000 and trial.false_alarms == 0
    assert trial.delay is not None and trial.delay < 4000  # seed 1: 2,359 steps
    assert trial.regret[8000:9000].mean() > 1.1 * trial.regret[7000:8000].mean()  # it hurts
