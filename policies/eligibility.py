"""Eligibility on a customer feature: an action (or a category or channel of actions) is
offered only to customers whose feature passes a test — ``credit_score >= 600`` for a
loan offer, ``has_mortgage == false`` for a mortgage campaign. The feature may be any
declared one (built-in or custom): rules read the customer's features by name.

Catalog shape (``rules.eligibility``, a list)::

    - {feature: credit_score, min: 600, actions: [email_loan_offer]}
    - {feature: segment, in: [vip, loyal], categories: [retention]}

``min``/``max`` bound a number (inclusive); ``in`` lists the allowed values; an entry
without ``actions``, ``categories`` or ``channels`` covers every contact. A customer whose
feature is missing fails the test. The exclusion reason is ``ineligible:<feature>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policies.errors import CatalogError
from policies.routing import as_number
from policies.types import Action, FeatureValue

_KEYS = frozenset({"feature", "min", "max", "in", "actions", "categories", "channels"})


def covers(
    action: Action, ids: frozenset[str], categories: frozenset[str], channels: frozenset[str]
) -> bool:
    """Whether a rule listing ``ids``, ``categories`` and ``channels`` (none: every contact)
    applies to ``action``."""
    if not (ids or categories or channels):
        return True
    return (
        action.id in ids or action.channel in channels
        or action.features.get("category") in categories
    )


def targets(entry: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """The ``actions``, ``categories`` and ``channels`` of a rule entry, as its fields."""
    return {
        "action_ids": frozenset(entry.get("actions") or ()),
        "categories": frozenset(entry.get("categories") or ()),
        "channels": frozenset(entry.get("channels") or ()),
    }


@dataclass(frozen=True, slots=True)
class Eligibility:
    """One eligibility test on the customer feature ``feature``; see the module docstring."""

    feature: str
    min: float | None = None
    max: float | None = None
    allowed: frozenset[Any] | None = None
    action_ids: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    reason: str = ""

    def __post_init__(self) -> None:
        if not self.feature or not isinstance(self.feature, str):
            raise CatalogError("eligibility: feature must be a feature name")
        if self.min is None and self.max is None and self.allowed is None:
            raise CatalogError(f"eligibility on {self.feature}: give min, max or in")
        object.__setattr__(self, "reason", f"ineligible:{self.feature}")

    @classmethod
    def from_config(cls, entry: Mapping[str, Any]) -> Eligibility:
        extra = set(entry) - _KEYS
        if extra:
            raise CatalogError(f"eligibility: unknown keys {sorted(extra)}")
        bounds = {}
        for key in ("min", "max"):
            value = entry.get(key)
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            if value is not None and not numeric:
                raise CatalogError(f"eligibility on {entry.get('feature')}: {key} must be a number")
            bounds[key] = None if value is None else float(value)
        allowed = entry.get("in")
        return cls(
            feature=entry.get("feature", ""),
            min=bounds["min"],
            max=bounds["max"],
            allowed=frozenset(allowed) if allowed is not None else None,
            **targets(entry),
        )

    def covers(self, action: Action) -> bool:
        """Whether this test applies to ``action``."""
        return covers(action, self.action_ids, self.categories, self.channels)

    def passes(self, customer: Mapping[str, FeatureValue]) -> bool:
        """Whether the customer's feature passes the test (missing fails)."""
        value = customer.get(self.feature)
        if value is None:
            return False
        if self.allowed is not None and value not in self.allowed:
            return False
        if self.min is None and self.max is None:
            return True
        number = as_number(value)
        return (self.min is None or number >= self.min) and (self.max is None or number <= self.max)
