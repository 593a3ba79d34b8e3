"""The one draw (``policies.draw``): any object with a pmf gets the floor, the seeded
draw and the Decision from it, an empty pmf abstains, and the holdout is such a policy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import pytest

from policies import draw
from policies.baselines import HoldoutPolicy
from policies.registry import make_policy
from policies.types import NO_CONTACT_ID, Action, Context, Exclusion, RankedAction

CTX = Context("c-1", {"tier": "gold"}, {"page": "cart"}, "default", 1.7e9)
ACTIONS = [Action(f"a{i}", "email") for i in range(4)]
EXCLUDED = [Exclusion("x", "quiet_hours")]


class _Skewed:
    """Not a BasePolicy: only what the draw needs (name, version, floor, own pmf)."""

    kind: ClassVar[str] = "skewed"
    version = "3"
    exploration_floor = 0.2

    def raw_pmf(self, context: Context, actions: Sequence[Action]) -> list[float]:
        return [1.0] + [0.0] * (len(actions) - 1)


def test_a_bare_pmf_gets_the_floor_and_a_replayable_draw() -> None:
    policy = _Skewed()
    probs = draw.floored_pmf(policy, CTX, ACTIONS)
    assert probs == pytest.approx([0.85, 0.05, 0.05, 0.05])
    drawn = set()
    for seed in range(200):
        d = draw.decide_among(policy, CTX, ACTIONS, EXCLUDED, seed, f"e{seed}")
        again = draw.decide_among(policy, CTX, ACTIONS, EXCLUDED, seed, f"e{seed}")
        assert d == again and d.excluded == tuple(EXCLUDED) and d.event_id == f"e{seed}"
        assert d.probability == probs[ACTIONS.index(d.action)]
        assert d.explored == (d.action.id != "a0")
        assert (d.policy, d.policy_version) == ("skewed", "3")
        assert d.ranking[0].action_id == "a0"
        drawn.add(d.action.id)
    assert drawn == {a.id for a in ACTIONS}  # the floor reaches every action


def test_base_policies_decide_through_the_draw() -> None:
    policy = make_policy("vw-cb", seed=1, exploration="softmax")
    for seed in range(20):
        expected = draw.decide(policy, CTX, ACTIONS, seed, "e")
        assert policy.decide(CTX, ACTIONS, seed, "e") == expected


def test_nothing_eligible_or_an_empty_pmf_is_no_action() -> None:
    for eligible, policy in (([], _Skewed()), (ACTIONS, HoldoutPolicy())):
        d = draw.decide_among(policy, CTX, eligible, EXCLUDED, 7, "e7")
        assert d.action is None and d.probability == 0.0 and d.ranking == ()
        assert d.excluded == tuple(EXCLUDED) and d.policy == policy.kind


def test_the_holdout_is_no_contact_with_probability_one() -> None:
    actions = [*ACTIONS[:2], Action(NO_CONTACT_ID, "none"), *ACTIONS[2:]]
    for seed in range(20):
        d = draw.decide_among(HoldoutPolicy(), CTX, actions, EXCLUDED, seed, "e")
        assert d.action is not None and d.action.id == NO_CONTACT_ID
        assert d.probability == 1.0 and not d.explored
        assert d.ranking == (
            RankedAction(NO_CONTACT_ID, 1.0),
            *(RankedAction(a.id, 0.0) for a in ACTIONS),
        )
        assert (d.policy, d.policy_version) == ("holdout", "holdout")
