"""A policy trained before a feature was declared keeps serving the same decisions: it
records the customer features it learnt from (kept in its saved bytes) and the draw drops
any other before the policy sees the context. Also: the ``eligibility`` rule on any
customer feature, built-in or declared."""

from __future__ import annotations

import numpy as np
import pytest

from policies.draw import floored_pmf, seen_only
from policies.errors import CatalogError
from policies.registry import load_policy, make_policy
from policies.rules import RuleSet
from policies.types import Action, Context, LoggedBatch

ACTIONS = [
    Action("a", "email", {"category": "marketing"}),
    Action("b", "push", {"category": "marketing"}),
    Action("c", "sms", {"category": "service"}),
]


def _context(i: int, **extra: object) -> Context:
    rng = np.random.default_rng(i)
    customer = {
        "churn_risk": float(rng.random()),
        "tenure_days": int(rng.integers(1, 900)),
        "segment": ["new", "loyal"][i % 2],
        **extra,
    }
    return Context(f"c-{i}", customer, decision_point="default", timestamp=1.7e9)


def _batch(n: int = 300) -> LoggedBatch:
    rng = np.random.default_rng(1)
    contexts = [_context(i) for i in range(n)]
    chosen = rng.integers(0, 3, n)
    rewards = np.array(
        [
            float(c.customer["churn_risk"] > 0.5) if k == 0 else 0.2
            for c, k in zip(contexts, chosen, strict=True)
        ]
    )
    return LoggedBatch(contexts, [ACTIONS] * n, chosen, np.full(n, 1 / 3), rewards)


@pytest.mark.parametrize("kind", ["linucb", "vw-cb", "neural"], ids=str)
def test_a_feature_declared_after_training_is_ignored(kind: str) -> None:
    from training.train import TrainConfig, train_candidate

    policy = train_candidate(kind, _batch(), None, TrainConfig(kind=kind))
    assert policy.input_features == ("churn_risk", "segment", "tenure_days")
    for i in range(20):
        plain, extended = _context(1000 + i), _context(1000 + i, credit_score=300 + 25 * i)
        expected = floored_pmf(policy, plain, ACTIONS)
        assert floored_pmf(policy, extended, ACTIONS) == pytest.approx(expected, abs=1e-12)
        assert policy.decide(extended, ACTIONS, seed=i).probability == pytest.approx(
            policy.decide(plain, ACTIONS, seed=i).probability, abs=1e-12
        )
    restored = load_policy(policy.save())
    assert restored.input_features == policy.input_features
    extended = _context(7, credit_score=850)
    assert floored_pmf(restored, extended, ACTIONS) == pytest.approx(
        floored_pmf(policy, _context(7), ACTIONS), abs=1e-6
    )


def test_without_the_filter_a_hashed_policy_would_see_the_new_feature() -> None:
    """The check above is not vacuous: LinUCB's hashed inputs change with the feature."""
    from training.train import TrainConfig, train_candidate

    policy = train_candidate("linucb", _batch(), None, TrainConfig(kind="linucb"))
    extended = _context(3, credit_score=850)
    assert not np.allclose(policy._feat.shared(extended), policy._feat.shared(_context(3)))
    assert seen_only(policy, extended).customer.keys() == _context(3).customer.keys()


def test_a_policy_without_recorded_inputs_reads_every_feature() -> None:
    policy = make_policy("uniform")
    extended = _context(1, credit_score=1)
    assert policy.known_features is None and seen_only(policy, extended) is extended


def _rules(*entries: dict) -> RuleSet:
    return RuleSet.from_config({"eligibility": list(entries)})


@pytest.mark.parametrize(
    "entry, customer, excluded",
    [
        ({"feature": "credit_score", "min": 700, "actions": ["a"]}, {"credit_score": 720}, []),
        ({"feature": "credit_score", "min": 700, "actions": ["a"]}, {"credit_score": 650}, ["a"]),
        ({"feature": "credit_score", "min": 700, "actions": ["a"]}, {}, ["a"]),  # missing
        ({"feature": "credit_score", "max": 500}, {"credit_score": 650}, ["a", "b", "c"]),
        (
            {"feature": "segment", "in": ["vip"], "categories": ["service"]},
            {"segment": "new"},
            ["c"],
        ),
        (
            {"feature": "has_mortgage", "in": [False], "channels": ["push"]},
            {"has_mortgage": True},
            ["b"],
        ),
    ],
    ids=["passes", "below-min", "missing", "above-max-all", "category", "channel"],
)
def test_eligibility_rule(entry: dict, customer: dict, excluded: list[str]) -> None:
    _, out = _rules(entry).split(Context("c", customer), ACTIONS)
    assert [(x.action_id, x.reason) for x in out] == [
        (a, f"ineligible:{entry['feature']}") for a in excluded
    ]


@pytest.mark.parametrize(
    "entry, problem",
    [
        ({"feature": "credit_score"}, "give min, max or in"),
        ({"feature": "credit_score", "min": "high"}, "min must be a number"),
        ({"feature": "credit_score", "min": 1, "above": 2}, "unknown keys"),
    ],
    ids=["no-test", "bad-min", "unknown-key"],
)
def test_a_malformed_eligibility_rule_is_refused(entry: dict, problem: str) -> None:
    with pytest.raises(CatalogError, match=problem):
        _rules(entry)
