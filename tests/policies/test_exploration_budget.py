"""The exploration budget per decision point: the catalog's floor, raised never lowered."""

from __future__ import annotations

import pytest

from policies.catalog import DEFAULT_EXPLORATION_FLOOR, load_catalog, parse_catalog
from policies.draw import decide, raise_floor
from policies.errors import CatalogError
from policies.registry import make_policy
from policies.types import Action, Context

ACTIONS = [
    Action("a", "email", {"category": "marketing"}),
    Action("b", "push", {"category": "marketing"}),
    Action("no_contact", "none", {"category": "none"}),
]


def _catalog(**point: object):
    actions = [{"id": a.id, "channel": a.channel, "features": a.features} for a in ACTIONS]
    return parse_catalog({"decision_points": {"default": {"actions": actions, **point}}})


def test_the_floor_comes_from_the_catalog_with_a_default() -> None:
    assert _catalog().decision_points["default"].exploration_floor == DEFAULT_EXPLORATION_FLOOR
    assert _catalog(exploration_floor=0.5)["default"].exploration_floor == 0.5
    shipped = load_catalog()
    assert {shipped[n].exploration_floor for n in shipped.names()} == {DEFAULT_EXPLORATION_FLOOR}
    for bad in (-0.1, 1.5, "high", True, None):
        with pytest.raises(CatalogError, match="exploration_floor must be a number in"):
            _catalog(exploration_floor=bad)


def test_raise_floor_raises_never_lowers_and_the_logged_probability_is_the_drawn_one() -> None:
    policy = make_policy("rules", priorities={"default": ["a"]}, exploration_floor=0.0)
    raise_floor(policy, 0.3)
    assert policy.exploration_floor == 0.3
    raise_floor(policy, 0.1)
    assert policy.exploration_floor == 0.3  # never lowered
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        raise_floor(policy, 1.2)
    ctx = Context("c-1", decision_point="default")
    pmf = policy.pmf(ctx, ACTIONS)
    assert pmf.tolist() == pytest.approx([0.7 + 0.1, 0.1, 0.1], abs=1e-12)
    for seed in range(50):
        d = decide(policy, ctx, ACTIONS, seed)
        assert d.probability == pytest.approx(pmf[[a.id for a in ACTIONS].index(d.action.id)])
