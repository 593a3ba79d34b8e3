"""The ``rules:`` mapping of the catalog YAML, read into the fields of a
:class:`~policies.rules.RuleSet`.

Parsing is kept apart from applying: :meth:`RuleSet.from_config
<policies.rules.RuleSet.from_config>` checks the keys with :func:`check_rule_keys`, builds
the set from :func:`rule_fields` and reports any malformed entry as a
:class:`~policies.errors.CatalogError` naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.conditions import Scope
from policies.contact_rules import ContactRules
from policies.eligibility import Eligibility
from policies.errors import CatalogError
from policies.routing import RoutingReward
from policies.rule_records import AgentRouting, Escalation, QuietHours, Suppression
from policies.when_rules import WhenRules

#: The keys a ``rules:`` mapping may have (one per :class:`~policies.rules.RuleSet` field).
RULE_KEYS = frozenset(
    {
        "consent_channels",
        "frequency_caps",
        "cooldowns",
        "offer_repeat",
        "suppressions",
        "quiet_hours",
        "required_action_features",
        "agent_routing",
        "escalation",
        "eligibility",
        "when",
    }
)


def check_rule_keys(config: Mapping[str, object]) -> None:
    """Raise :class:`~policies.errors.CatalogError` naming any key not in :data:`RULE_KEYS`."""
    extra = set(config) - RULE_KEYS
    if extra:
        raise CatalogError(f"rules: unknown keys {sorted(extra)}")


def rule_fields(config: Mapping[str, Any], scope: Scope | None = None) -> dict[str, Any]:
    """The keyword arguments of a ``RuleSet`` for ``config`` (keys already checked).

    A malformed entry raises ``KeyError``, ``TypeError``, ``AttributeError`` or
    ``ValueError`` (a rule record's own ``CatalogError`` among them); entries are read in
    this order, so the first malformed one is the one reported.
    """
    return {
        "contact": ContactRules.from_config(
            config.get("frequency_caps"), config.get("cooldowns"), config.get("offer_repeat")
        ),
        "suppressions": tuple(_suppression(s) for s in config.get("suppressions") or []),
        "quiet_hours": _quiet_hours(config.get("quiet_hours")),
        "agent_routing": _agent_routing(config.get("agent_routing")),
        "escalation": _escalation(config.get("escalation")),
        "eligibility": tuple(Eligibility.from_config(e) for e in config.get("eligibility") or []),
        "when": WhenRules.from_config(config.get("when"), scope),
        "consent_channels": frozenset(config.get("consent_channels") or ()),
        "required_action_features": tuple(config.get("required_action_features") or ()),
    }


def _suppression(entry: Mapping[str, Any]) -> Suppression:
    allow_only = entry.get("allow_only_categories")
    return Suppression(
        when=entry["when"],
        block_categories=frozenset(entry.get("block_categories") or ()),
        allow_only_categories=(
            frozenset(entry["allow_only_categories"]) if allow_only is not None else None
        ),
    )


def _quiet_hours(entry: Mapping[str, Any] | None) -> QuietHours | None:
    if not entry:
        return None
    return QuietHours(
        start=int(entry["start"]),
        end=int(entry["end"]),
        channels=frozenset(entry.get("channels") or ()),
    )


def _agent_routing(entry: Mapping[str, Any] | None) -> AgentRouting | None:
    if entry is None:
        return None
    return AgentRouting(
        retention_churn_risk=float(entry.get("retention_churn_risk", 0.7)),
        retention_tiers=frozenset(entry.get("retention_tiers") or ()),
        reward=RoutingReward.from_config(entry.get("reward")),
    )


def _escalation(entry: Mapping[str, object] | None) -> Escalation | None:
    return Escalation.from_config(entry) if entry is not None else None
