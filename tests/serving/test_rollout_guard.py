"""The rollout guard the service feeds: which decisions it counts, the default reward of
a closed window, the frozen latency line, the split of customers, and A/A false
rollbacks over 20 seeds with all three guardrails (the benchmark's simulation)."""

from __future__ import annotations

import pytest

from benchmarks.bench_rollout import Arm as SimArm
from benchmarks.bench_rollout import run
from policies.registry import make_policy
from serving.experiments.variants import Arm
from serving.rollout.guard import Guard, GuardConfig
from serving.rollout.rollout import Step
from serving.rollout.shadow import ShadowEval
from serving.service.policy_store import LoadedPolicy
from training.stages import StageState


def test_aa_false_rollbacks_at_most_one_in_20_seeds() -> None:
    found = [run(seed, 0.1, SimArm(), 5000)[0] for seed in range(20)]
    assert sum(n is not None for n in found) <= 1  # ≤ 5% of 20


def test_a_halved_reward_is_rolled_back_within_the_stated_bound() -> None:
    found = [run(seed, 0.5, SimArm(reward=0.15), 5000) for seed in range(20)]
    assert all(n is not None and n <= 1000 and rail == "reward" for n, rail in found), found


def test_only_the_two_arms_count_and_a_closed_window_gives_the_default() -> None:
    g = Guard("canary", "champion", default_reward=0.25, window_seconds=10.0)
    g.decided("holdout", "e0", False, 0.001, 0.0)  # another experiment's arm: ignored
    assert g.decisions == 0
    g.decided("canary", "e1", False, 0.001, 0.0)
    g.decided("champion", "e2", True, 0.001, 1.0)
    assert g.rewarded("e1", 1.0) and not g.rewarded("e1", 1.0)  # first reward only
    assert not g.rewarded("nope", 1.0)
    g.expire(10.5)  # e2's window (1 + 10) is still open
    assert g.tests["reward"].baseline.n == 0
    g.expire(11.0)
    reward = g.tests["reward"]
    assert (reward.treatment.n, reward.treatment.mean) == (1, 1.0)
    assert (reward.baseline.n, reward.baseline.mean) == (1, 0.25)
    assert g.tests["degraded"].baseline.mean == 1.0 and g.tests["degraded"].treatment.mean == 0.0


def test_the_latency_line_is_the_baselines_p99_then_frozen() -> None:
    g = Guard("canary", "champion", 0.0, 1e9, GuardConfig(latency_sample=100))
    for i in range(100):
        g.decided("canary", f"c{i}", False, 0.5, float(i))  # slow, before the line exists
        g.decided("champion", f"b{i}", False, (i + 1) / 1000, float(i))
    line = g.status()["latency_threshold_seconds"]
    assert line == pytest.approx(0.09901, abs=1e-6)  # numpy's p99 of 0.001 … 0.100
    slow = g.tests["latency_p99"]
    assert slow.treatment.n == 100 and slow.treatment.mean == 1.0  # replayed against it
    assert slow.baseline.mean == pytest.approx(0.01, abs=1e-12)
    assert slow.rejected_at is not None  # every canary answer is slower than the line
    assert g.rejected()[0] == "latency_p99"


def _step(stage: str, share: float) -> Step:
    policy = make_policy("uniform")
    state = StageState("d", champion="2", canary="3" if stage == "canary" else None,
                       previous="1" if stage == "watch" else None, share=share,
                       watch=stage == "watch")
    name = "canary" if stage == "canary" else "previous_champion"
    return Step(state, minor=Arm(name, LoadedPolicy(policy, "x", name)), scope=f"rollout:d:{stage}")


@pytest.mark.parametrize("stage", ["canary", "watch"])
def test_the_share_is_split_by_the_customer_hash_and_sticky(stage: str) -> None:
    step = _step(stage, 0.2)
    arms = [step.arm(f"cust-{i}", "salt").name for i in range(5000)]
    minor = "canary" if stage == "canary" else "previous_champion"
    assert arms.count(minor) / 5000 == pytest.approx(0.2, abs=0.02)
    assert set(arms) == {minor, "champion"}
    assert [step.arm(f"cust-{i}", "salt").name for i in range(5000)] == arms
    step.rejected = True  # after a rejection nobody is served by the suspect
    after = {step.arm(f"cust-{i}", "salt").name for i in range(500)}
    assert after == ({"champion"} if stage == "canary" else {"previous_champion"})


def test_shadow_estimates_are_ips_and_snips_of_the_resolved_rows() -> None:
    ev = ShadowEval("7", default_reward=0.0, window_seconds=5.0)
    ev.decided("a", 2.0, 0.0)
    ev.decided("b", 0.5, 1.0)
    ev.decided("c", 1.0, 2.0)
    ev.rewarded("a", 1.0)
    ev.rewarded("b", 1.0)
    ev.decided("d", 4.0, 7.5)  # closes c's window (2 + 5) at the default reward 0
    est = ev.estimates()
    assert est["resolved"] == 3 and est["pending"] == 1
    assert est["served_value"] == pytest.approx(2 / 3, abs=1e-12)
    assert est["shadow_ips"] == pytest.approx((2.0 + 0.5) / 3, abs=1e-12)
    assert est["shadow_snips"] == pytest.approx(2.5 / 3.5, abs=1e-12)
    assert est["effective_sample_size"] == pytest.approx(3.5**2 / 5.25, abs=1e-12)
