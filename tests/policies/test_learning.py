"""Learning with fixed seeds: on a problem whose best action depends on the customer,
the learned policies approach the optimal policy while uniform stays uniform."""

from __future__ import annotations

import numpy as np
import pytest

from policies.base import BasePolicy
from policies.registry import make_policy
from policies.types import LoggedBatch

INTERACTIONS = 3000
BATCH = 20


def train_online(policy: BasePolicy, problem, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    actions = list(problem.actions)
    for start in range(0, INTERACTIONS, BATCH):
        contexts, chosen, probs, rewards = [], [], [], []
        for t in range(start, start + BATCH):
            context, s = problem.context(rng)
            decision = policy.decide(context, actions, seed=seed * 1_000_003 + t)
            a = actions.index(decision.action)
            contexts.append(context)
            chosen.append(a)
            probs.append(decision.probability)
            rewards.append(float(rng.random() < problem.table[s, a]))
        policy.learn(
            LoggedBatch(
                contexts, [actions] * BATCH, np.array(chosen), np.array(probs), np.array(rewards)
            )
        )


def policy_value(policy: BasePolicy, problem, n: int = 400, seed: int = 99) -> float:
    """Exact expected reward of the policy's pmf (exploration included) on fresh contexts."""
    rng = np.random.default_rng(seed)
    actions = list(problem.actions)
    total = 0.0
    for _ in range(n):
        context, s = problem.context(rng)
        total += float(policy.pmf(context, actions) @ problem.table[s])
    return total / n


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("vw-cb", {"exploration": "epsilon", "epsilon": 0.05}),
        ("vw-cb", {"exploration": "squarecb"}),
        ("linucb", {}),
        ("neural", {}),
    ],
    ids=["vw-cb-epsilon", "vw-cb-squarecb", "linucb", "neural"],
)
def test_learned_policy_reaches_90_percent_of_optimal(kind: str, params: dict, problem) -> None:
    policy = make_policy(kind, seed=11, **params)
    before = policy_value(policy, problem)
    train_online(policy, problem, seed=5)
    after = policy_value(policy, problem)
    assert after >= 0.9 * problem.optimal_value(), (before, after, problem.optimal_value())
    assert after > before + 0.2


def test_uniform_stays_at_its_level(problem) -> None:
    policy = make_policy("uniform", seed=11)
    train_online(policy, problem, seed=5)
    assert policy_value(policy, problem) == pytest.approx(problem.uniform_value(), abs=0.03)


@pytest.mark.parametrize(
    ("params", "share_of_optimal"),
    [
        ({"exploration": "softmax"}, 0.9),
        ({"exploration": "bag"}, 0.9),
        # online cover keeps exploring on purpose (Agarwal et al. 2014): a lower bar
        ({"exploration": "cover", "cb_type": "dr"}, 0.75),
    ],
    ids=["softmax", "bag", "cover"],
)
def test_other_vw_explorations_learn(params: dict, share_of_optimal: float, problem) -> None:
    policy = make_policy("vw-cb", seed=11, **params)
    train_online(policy, problem, seed=5)
    value = policy_value(policy, problem)
    assert value >= share_of_optimal * problem.optimal_value()
    assert value > problem.uniform_value() + 0.2
