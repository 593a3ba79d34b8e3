"""Eligibility by expression: the catalog's ``rules.when`` list.

Each entry names a condition (:mod:`policies.conditions`) an action needs to hold::

    - {name: vip_only, if: "segment.vip", actions: [call_center_callback]}
    - {if: "customer.lifetime_value > 2000 && context.page == 'pricing'", channels: [push]}

An entry without ``actions``, ``categories`` or ``channels`` covers every contact. The
exclusion reason is ``condition:<name>``, or ``condition:<expression>`` without a name.
All conditions of a decision are evaluated once, before the policy draws, over one
activation (the features and context keys they read and the segments they name).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from policies.conditions import Condition, Scope, activation, variable, variables
from policies.eligibility import covers, targets
from policies.errors import CatalogError
from policies.segments import SegmentSet
from policies.types import Action, Context

_KEYS = frozenset({"name", "if", "actions", "categories", "channels"})
_NONE: dict[str, str] = {}
_MEMO = 1024


@dataclass(frozen=True)
class WhenRule:
    """One condition and the actions it covers; see the module docstring."""

    condition: Condition
    reason: str
    action_ids: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, entry: Mapping[str, Any], scope: Scope) -> WhenRule:
        extra = set(entry) - _KEYS
        if extra:
            raise CatalogError(f"when: unknown keys {sorted(extra)}")
        if "if" not in entry:
            raise CatalogError("when: each entry needs an 'if' expression")
        condition = scope.compile(entry["if"])
        return cls(
            condition=condition,
            reason=f"condition:{entry.get('name') or condition.expression}",
            **targets(entry),
        )

    def covers(self, action: Action) -> bool:
        """Whether this rule applies to ``action``."""
        return covers(action, self.action_ids, self.categories, self.channels)


@dataclass(frozen=True)
class WhenRules:
    """The ``when`` rules of one decision point with what their activation needs."""

    rules: tuple[WhenRule, ...] = ()
    segments: Mapping[str, Condition] | None = None

    def __post_init__(self) -> None:
        conds = [r.condition for r in self.rules]
        named = {s for c in conds for s in c.segments}
        used = {n: c for n, c in (self.segments or {}).items() if n in named}
        deps = [*conds, *used.values()]
        customer = frozenset().union(*(c.customer for c in deps))
        keys = frozenset().union(*(c.context for c in deps))
        object.__setattr__(self, "_customer", variables("customer", customer))
        object.__setattr__(self, "_keys", variables("context", keys))
        object.__setattr__(
            self, "_used", tuple((variable("segment", n), c) for n, c in used.items())
        )
        # segments evaluated once per decision with the rules' inputs (see SegmentSet)
        shared = self.segments if isinstance(self.segments, SegmentSet) and self.rules else None
        if shared is not None:
            shared.require(customer, keys)
        object.__setattr__(self, "_shared", shared)
        object.__setattr__(self, "_reasons", {})

    @classmethod
    def from_config(
        cls, entries: Sequence[Mapping[str, Any]] | None, scope: Scope | None
    ) -> WhenRules:
        if not entries:
            return cls()
        scope = scope or Scope(source_of_unknown())
        return cls(tuple(WhenRule.from_config(e, scope) for e in entries), scope.segments)

    def reasons(self, context: Context, actions: Sequence[Action]) -> dict[str, str]:
        """Action id → the reason of the first failing rule covering it, for ``actions``
        (memoised per candidate list and set of failing rules: few combinations recur)."""
        failing = self.failing(context)
        if not failing:
            return _NONE
        key = (id(actions), *[id(r) for r in failing])
        memo = self._reasons  # type: ignore[attr-defined]
        hit = memo.get(key)
        if hit is not None and hit[0] is actions:
            return hit[1]
        found: dict[str, str] = {}
        for action in actions:
            for rule in failing:
                if rule.covers(action):
                    found[action.id] = rule.reason
                    break
        if len(memo) >= _MEMO:
            memo.clear()
        memo[key] = (actions, found)  # the list is held, so its id is not reused
        return found

    def failing(self, context: Context) -> list[WhenRule]:
        """The rules whose condition does not hold for ``context`` (once per decision)."""
        if not self.rules:
            return []
        shared = self._shared  # type: ignore[attr-defined]
        if shared is not None:
            act = shared.activation(context)
        else:
            act = activation(context, self._customer, self._keys, self._used)  # type: ignore[attr-defined]
        return [r for r in self.rules if not r.condition.holds(act)]


def source_of_unknown() -> Any:
    """A source for rules built without a file (tests, a catalog from a mapping)."""
    from policies.conditions import Source

    return Source("catalog")
