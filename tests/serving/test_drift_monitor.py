"""The service's drift monitor without HTTP: which decisions it remembers, what a reward
joins, when online learning stops, and what a new champion resets."""

from __future__ import annotations

import numpy as np
import pytest

from policies.registry import make_policy
from policies.types import Action, Context
from serving.service.drift import DriftMonitor, DriftOptions
from serving.service.metrics import Metrics
from serving.service.policy_store import LoadedPolicy
from training.drift.alarms import alarm_path, alarms_since

ACTIONS = [Action("a", "email", {}), Action("b", "sms", {})]


def _ctx(i: int) -> Context:
    return Context(f"c{i}", customer={"spend": float(i % 5)}, decision_point="dp")


def _sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_a_reward_joins_once_and_unknown_events_are_ignored() -> None:
    metrics = Metrics()
    monitor = DriftMonitor(metrics, DriftOptions(reference=2, window=10))
    loaded = LoadedPolicy(make_policy("uniform"), "3", "champion")
    monitor.decided("e1", loaded, _ctx(1), ACTIONS, ACTIONS[0], 0.5)
    assert monitor.rewarded("e1", 1.0, lambda _: loaded)
    assert not monitor.rewarded("e1", 1.0, lambda _: loaded)  # joined once
    assert not monitor.rewarded("never-decided", 1.0, lambda _: loaded)
    assert _sample(metrics, "maestro_drift_joined_rewards_total", decision_point="dp") == 1
    assert monitor.learned_since("dp") is None  # online learning off


def test_the_pending_table_is_bounded_oldest_first() -> None:
    monitor = DriftMonitor(Metrics(), DriftOptions(pending=3, window=10))
    loaded = LoadedPolicy(make_policy("uniform"), "1", "champion")
    for i in range(5):
        monitor.decided(f"e{i}", loaded, _ctx(i), ACTIONS, ACTIONS[0], 0.5)
    assert not monitor.rewarded("e0", 1.0, lambda _: loaded)
    assert not monitor.rewarded("e1", 1.0, lambda _: loaded)
    assert monitor.rewarded("e4", 1.0, lambda _: loaded)


def test_only_the_latest_decisions_keep_what_online_learning_needs() -> None:
    monitor = DriftMonitor(Metrics(), DriftOptions(online=True, learnable=2, window=10))
    loaded = LoadedPolicy(make_policy("vw-cb", seed=0), "1", "champion")
    for i in range(4):
        monitor.decided(f"e{i}", loaded, _ctx(i), ACTIONS, ACTIONS[0], 0.5)
    for i in range(4):  # all four join the detectors; only the latest two are learnt
        assert monitor.rewarded(f"e{i}", 1.0, lambda _: loaded)
    assert monitor.learned_since("dp") == 2


def test_online_learning_stops_at_its_bound_and_a_new_champion_resets(tmp_path) -> None:
    metrics = Metrics()
    options = DriftOptions(online=True, max_updates=5, window=10)
    monitor = DriftMonitor(metrics, options, alarm_path(tmp_path), "replica-1")
    policy = make_policy("vw-cb", seed=0)
    loaded = LoadedPolicy(policy, "7", "champion")
    ctx = _ctx(0)
    before = policy.pmf(ctx, ACTIONS)
    for i in range(8):
        monitor.decided(f"e{i}", loaded, ctx, ACTIONS, ACTIONS[1], 0.5)
        monitor.rewarded(f"e{i}", 10.0, lambda _: loaded)
    assert monitor.learned_since("dp") == 5  # stopped at the bound
    assert not np.allclose(policy.pmf(ctx, ACTIONS), before, atol=1e-9)
    assert _sample(metrics, "maestro_drift_alarm", decision_point="dp",
                   detector="online_bound") == 1  # fmt: skip
    assert [a.detector for a in alarms_since(alarm_path(tmp_path), 0.0)] == ["online_bound"]
    # a decision made by a version since replaced is not learnt by the new one
    monitor.reset("dp")
    fresh = LoadedPolicy(make_policy("vw-cb", seed=0), "8", "champion")
    monitor.decided("old", loaded, ctx, ACTIONS, ACTIONS[1], 0.5)
    monitor.rewarded("old", 10.0, lambda _: fresh)
    assert monitor.learned_since("dp") == 0
    assert _sample(metrics, "maestro_drift_alarm", decision_point="dp",
                   detector="online_bound") == 0  # fmt: skip


@pytest.mark.parametrize("kind", ["uniform", "linucb"])
def test_only_vw_learns_online(kind: str) -> None:
    monitor = DriftMonitor(Metrics(), DriftOptions(online=True, window=10))
    loaded = LoadedPolicy(make_policy(kind), "1", "champion")
    monitor.decided("e", loaded, _ctx(0), ACTIONS, ACTIONS[0], 0.5)
    assert monitor.rewarded("e", 1.0, lambda _: loaded)
    assert monitor.learned_since("dp") == 0
