"""The typed records of each kind of business rule, checked once when built.

A :class:`~policies.rules.RuleSet` is made of these: frequency caps, suppressions,
quiet hours, contact-centre routing and escalation gates. Each validates its fields in
``__post_init__`` so a malformed catalog fails at start-up, not on a request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from policies.errors import CatalogError
from policies.routing import RoutingReward, as_number
from policies.types import CHANNELS, Action, Context, FeatureValue


def truthy(value: FeatureValue) -> bool:
    """A feature value read as a flag: ``True``, non-zero, or "1"/"true"/"yes"/"y"."""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "y"}
    return bool(value)


@dataclass(frozen=True, slots=True)
class Suppression:
    """When the customer feature ``when`` is true, block or allow-only categories of actions."""

    when: str
    block_categories: frozenset[str] = frozenset()
    allow_only_categories: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class QuietHours:
    """No contact on ``channels`` from ``start`` to ``end`` o'clock in the customer's time zone."""

    start: int
    end: int
    channels: frozenset[str]

    def __post_init__(self) -> None:
        if not (0 <= self.start <= 23 and 0 <= self.end <= 23):
            raise CatalogError("quiet_hours: start and end must be hours 0-23")

    def covers(self, hour: int) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= hour < self.end
        return hour >= self.start or hour < self.end


@dataclass(frozen=True, slots=True)
class AgentRouting:
    """Contact-centre routing: skill, level, language, capacity; VIP or high churn risk
    customers only to agents with the ``retention`` skill."""

    retention_churn_risk: float = 0.7
    retention_tiers: frozenset[str] = frozenset({"vip"})
    reward: RoutingReward = field(default_factory=RoutingReward)


@dataclass(frozen=True, slots=True)
class Escalation:
    """Actions on ``channels`` (or with ids in ``action_ids``) are eligible only with an
    escalation signal: ``churn_risk >= churn_risk``, ``rapid_clicks >= rapid_clicks`` or
    (when ``open_complaint``) an open complaint. A threshold of ``None`` disables that
    signal. Reason when none is present: ``no_escalation_signal``."""

    channels: frozenset[str] = frozenset({"call_center"})
    action_ids: frozenset[str] = frozenset()
    churn_risk: float | None = 0.6
    rapid_clicks: float | None = 3
    open_complaint: bool = True

    def __post_init__(self) -> None:
        unknown = set(self.channels) - CHANNELS
        if unknown:
            raise CatalogError(f"escalation: unknown channels {sorted(unknown)}")

    def gates(self, action: Action) -> bool:
        return action.channel in self.channels or action.id in self.action_ids

    def signalled(self, context: Context) -> bool:
        """True when the customer features or the request context carry a signal."""
        for source in (context.customer, context.request):
            churn = self.churn_risk
            if churn is not None and as_number(source.get("churn_risk")) >= churn:
                return True
            if (
                self.rapid_clicks is not None
                and as_number(source.get("rapid_clicks")) >= self.rapid_clicks
            ):
                return True
            if self.open_complaint and truthy(source.get("open_complaint")):
                return True
        return False

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> Escalation:
        extra = set(config) - {
            "channels",
            "action_ids",
            "churn_risk",
            "rapid_clicks",
            "open_complaint",
        }
        if extra:
            raise CatalogError(f"escalation: unknown keys {sorted(extra)}")
        cr, rc = config.get("churn_risk", 0.6), config.get("rapid_clicks", 3)
        return cls(
            channels=frozenset(config.get("channels", ["call_center"]) or ()),  # type: ignore[arg-type]
            action_ids=frozenset(config.get("action_ids") or ()),  # type: ignore[arg-type]
            churn_risk=None if cr is None else float(cr),  # type: ignore[arg-type]
            rapid_clicks=None if rc is None else float(rc),  # type: ignore[arg-type]
            open_complaint=bool(config.get("open_complaint", True)),
        )
