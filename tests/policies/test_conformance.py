"""Every registered policy keeps the promises of a policy (DESIGN.md convention 6)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.catalog import Catalog
from policies.checks import PolicyConformanceError, check_policy
from policies.decision import decide_with_rules
from policies.registry import REGISTERED_KINDS, make_policy
from policies.rules import RuleSet, local_hour
from policies.types import CONTACT_CHANNELS, Context

KINDS = list(REGISTERED_KINDS)


@pytest.fixture(scope="module", params=KINDS, ids=KINDS)
def policy(request: pytest.FixtureRequest):
    return make_policy(request.param, seed=3)


def test_check_policy(policy) -> None:
    check_policy(policy)


def test_check_policy_catches_a_broken_pmf() -> None:
    bad = make_policy("uniform")
    bad.raw_pmf = lambda context, actions: [0.5] * len(actions)  # apply_floor renormalises...
    check_policy(bad)  # ...so this one is still honest
    bad.pmf = lambda context, actions: np.full(len(actions), 0.5)  # but a lying pmf is caught
    with pytest.raises(PolicyConformanceError, match="sums to"):
        check_policy(bad)


# --------------------------------------------------------------------- forbidden actions
@st.composite
def scenarios(draw: st.DrawFn) -> tuple[str, dict, float, int]:
    decision_point = draw(
        st.sampled_from(
            ["default", "cart_abandoned", "churn_risk", "onboarding", "billing_overdue"]
        )
    )
    customer: dict = {f"consent_{c}": draw(st.booleans()) for c in CONTACT_CHANNELS}
    for c in CONTACT_CHANNELS:
        customer[f"sends_{c}_7d"] = draw(st.integers(0, 6))
        customer[f"sends_{c}_30d"] = draw(st.integers(0, 12))
    customer["open_complaint"] = draw(st.booleans())
    customer["overdue_invoice"] = draw(st.booleans())
    customer["timezone"] = draw(
        st.sampled_from(["UTC", "Europe/Paris", "Asia/Tokyo", "America/New_York", "Not/AZone"])
    )
    customer["segment"] = draw(st.sampled_from(["new", "loyal", "at_risk"]))
    timestamp = draw(st.floats(1.6e9, 1.9e9))
    seed = draw(st.integers(0, 2**63))
    return decision_point, customer, timestamp, seed


def _assert_honest(decision, rules: RuleSet, context: Context, candidates) -> None:
    excluded = {e.action_id for e in decision.excluded}
    if decision.action is None:
        assert excluded == {a.id for a in candidates}
        return
    assert decision.action.id not in excluded
    hour = local_hour(context.timestamp, context.customer.get("timezone"))
    assert rules.reason(context, decision.action, hour) is None
    channel = decision.action.channel
    if channel in rules.consent_channels:
        assert context.customer[f"consent_{channel}"] is True
    assert math.isclose(sum(r.probability for r in decision.ranking), 1.0, abs_tol=1e-9)
    assert {r.action_id for r in decision.ranking}.isdisjoint(excluded)


@pytest.mark.parametrize("kind", KINDS, ids=KINDS)
def test_forbidden_actions_never_drawn(kind: str, catalog: Catalog) -> None:
    """10,000 random contexts per policy: 500 hypothesis scenarios × 20 draws each."""
    policy = make_policy(kind, seed=1, exploration_floor=0.3)
    channels_drawn: set[str] = set()
    decisions = 0

    @settings(
        max_examples=500, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
    )
    @given(scenarios())
    def run(scenario: tuple[str, dict, float, int]) -> None:
        dp_name, customer, timestamp, seed = scenario
        point = catalog[dp_name]
        context = Context("c-1", customer, {"page": "cart"}, dp_name, timestamp)
        for k in range(20):
            decision = decide_with_rules(policy, point.rules, context, point.actions, seed + k)
            _assert_honest(decision, point.rules, context, point.actions)
            nonlocal decisions
            decisions += 1
            if decision.action is not None:
                channels_drawn.add(decision.action.channel)

    run()
    assert decisions == 10_000
    # the scenarios really exercise contact channels, not just no_contact
    assert {"email", "push", "sms", "in_app"} <= channels_drawn


CONTEXT_FREE = [k for k in KINDS if make_policy(k).context_free]


def test_uniform_and_rules_are_context_free() -> None:
    assert {"uniform", "rules"} <= set(CONTEXT_FREE) and "vw-cb" not in CONTEXT_FREE


@pytest.mark.parametrize("kind", CONTEXT_FREE, ids=CONTEXT_FREE)
def test_a_context_free_policy_ignores_the_customer(kind: str, catalog: Catalog) -> None:
    """``context_free`` lets bulk evaluation ask once per (decision point, actions): it must
    hold for every customer, or the claim is false."""
    policy = make_policy(kind, seed=2)
    point = catalog["cart_abandoned"]
    rng = np.random.default_rng(0)
    pmfs = {
        tuple(
            policy.pmf(
                Context(
                    f"c-{i}",
                    {
                        "lifetime_value": float(rng.uniform(0, 5000)),
                        "segment": str(rng.choice(["a", "b"])),
                    },
                    {"page": "cart"},
                    point.name,
                    0.0,
                ),
                point.actions,
            )
        )
        for i in range(50)
    }
    assert len(pmfs) == 1
