"""Business rules: which candidate actions a customer may receive right now.

Rules run before every policy and before every fallback, so a forbidden action
can never be drawn. Each exclusion carries a machine-readable reason:

``no_consent:<channel>`` · ``suppressed:<flag>`` · ``quiet_hours`` ·
``missing_feature:<name>`` · ``skill`` · ``language`` · ``capacity`` · ``retention_only`` ·
``no_escalation_signal``; from the contact history (:mod:`policies.contact_rules`, applied by
the caller that holds it) ``cap:<channel|any>:<window>`` · ``cooldown:<window>`` ·
``repeat:<offer>:<window>`` · ``budget:<action_id>:<period>``;
from a declared feature ``ineligible:<feature>``.

Escalation (:class:`Escalation`, opt-in per decision point): costly human channels such as
``call_center`` (or a priority-chat action named by id) are eligible only when the customer
shows a churn-risk or frustration signal — ``churn_risk`` at or above a threshold, at least
N ``rapid_clicks`` in the session (counted by ``POST /events`` page views), or an open
complaint. Signals are read from the customer's features and from the request context.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from policies.conditions import ConditionError, Scope
from policies.contact_rules import ContactRules, FrequencyCap
from policies.eligibility import Eligibility
from policies.errors import CatalogError
from policies.routing import RoutingCase
from policies.rule_config import check_rule_keys, rule_fields
from policies.rule_records import (
    AgentRouting,
    Escalation,
    QuietHours,
    Suppression,
    truthy,
)
from policies.types import CHANNELS, NO_CONTACT_ID, Action, Context, Exclusion, FeatureValue
from policies.when_rules import WhenRules

__all__ = [
    "AgentRouting",
    "ContactRules",
    "Escalation",
    "FrequencyCap",
    "QuietHours",
    "RuleSet",
    "Suppression",
    "local_hour",
]


_UTC = ZoneInfo("UTC")


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return _UTC


#: (time zone, minute since the epoch) → local hour: every UTC offset and every DST
#: transition in use falls on a whole minute, so the hour is constant within a minute
_HOURS: dict[tuple[object, int], int] = {}
_HOURS_MAX = 4096


def local_hour(timestamp: float, timezone: FeatureValue) -> int:
    """The hour of day (0–23) at ``timestamp`` in ``timezone`` (UTC when unknown).

    Parameters
    ----------
    timestamp: float
        Epoch seconds of the decision.
    timezone: FeatureValue
        The customer's IANA zone name (``timezone`` feature); anything else means UTC.
    """
    key = (timezone, int(timestamp // 60))
    hour = _HOURS.get(key)
    if hour is None:
        zone = _zone(timezone) if isinstance(timezone, str) and timezone else _UTC
        hour = datetime.fromtimestamp(timestamp, zone).hour
        if len(_HOURS) >= _HOURS_MAX:
            _HOURS.clear()
        _HOURS[key] = hour
    return hour


@dataclass(frozen=True)
class RuleSet:
    """The rules of one decision point, applied by :meth:`split`.

    Parameters
    ----------
    consent_channels: frozenset of str
        Channels that need the customer feature ``consent_<channel>`` to be true.
    contact: ContactRules
        Frequency caps, cool-downs and offer repetition, counted from the customer's
        contact history (applied by the serving layer's contact stage, which holds the
        history; :meth:`split` does not read it).
    suppressions: tuple of Suppression
        Category blocks while a flag feature is true.
    quiet_hours: QuietHours, optional
        Hours of the customer's local day without contact on some channels.
    required_action_features: tuple of str
        Action features a candidate must carry.
    agent_routing, escalation: AgentRouting, Escalation, optional
        Contact-centre routing checks; channels gated behind an escalation signal.
    eligibility: tuple of Eligibility
        Tests on a customer feature (any declared one) an action needs to pass.
    when: WhenRules
        Conditions (expressions over features, context and segments) an action needs.
    """

    consent_channels: frozenset[str] = frozenset()
    contact: ContactRules = field(default_factory=ContactRules)
    suppressions: tuple[Suppression, ...] = ()
    quiet_hours: QuietHours | None = None
    required_action_features: tuple[str, ...] = ()
    agent_routing: AgentRouting | None = None
    escalation: Escalation | None = None
    eligibility: tuple[Eligibility, ...] = ()
    when: WhenRules = field(default_factory=WhenRules)
    _routing_memo: list[tuple[Context, RoutingCase] | None] = field(
        init=False, repr=False, compare=False, default_factory=lambda: [None]
    )

    def __post_init__(self) -> None:
        unknown = set(self.consent_channels) - CHANNELS
        if unknown:
            raise CatalogError(f"consent_channels: unknown channels {sorted(unknown)}")
        # per channel, precomputed once: (consent feature or None, its reason) — no string
        # building on the request path
        checks = {
            channel: (
                f"consent_{channel}" if channel in self.consent_channels else None,
                f"no_consent:{channel}",
            )
            for channel in CHANNELS
        }
        object.__setattr__(self, "_channel_checks", checks)

    @property
    def frequency_caps(self) -> tuple[FrequencyCap, ...]:
        """The caps of :attr:`contact` (counted from the contact history)."""
        return self.contact.caps

    @classmethod
    def from_config(
        cls, config: Mapping[str, object] | None, scope: Scope | None = None
    ) -> RuleSet:
        """Build from the ``rules:`` mapping of the catalog YAML
        (read by :mod:`policies.rule_config`); ``scope`` checks the ``when`` conditions."""
        config = dict(config or {})
        check_rule_keys(config)
        try:
            return cls(**rule_fields(config, scope))
        except ConditionError:
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise CatalogError(f"rules: malformed entry ({exc})") from exc

    # ------------------------------------------------------------------ applying
    def reason(self, context: Context, action: Action, hour: int | None) -> str | None:
        """Why ``action`` is forbidden for ``context``, or ``None`` when it is allowed.

        Parameters
        ----------
        context: Context
            The customer's features and the request context.
        action: Action
            One candidate.
        hour: int or None
            The customer's local hour (:func:`local_hour`); ``None`` skips quiet hours.
        """
        why = self._reason(context, action, hour, self._active(context), {}, None)
        if why is None:
            for rule in self.when.failing(context):
                if rule.covers(action):
                    return rule.reason
        return why

    def _active(self, context: Context) -> list[Suppression]:
        customer = context.customer
        return [s for s in self.suppressions if truthy(customer.get(s.when))]

    def _channel_reason(self, customer: Mapping[str, FeatureValue], channel: str) -> str | None:
        consent, no_consent = self._channel_checks[channel]
        if consent is not None:
            granted = customer.get(consent)
            if not (granted is True or (granted is not False and truthy(granted))):
                return no_consent
        return None

    def _reason(
        self,
        context: Context,
        action: Action,
        hour: int | None,
        active: list[Suppression],
        per_channel: dict[str, str | None],
        escalated: list[bool] | None,
    ) -> str | None:
        if action.id == NO_CONTACT_ID or action.channel == "none":
            return None
        for name in self.required_action_features:
            if action.features.get(name) is None:
                return f"missing_feature:{name}"
        channel = action.channel
        if channel in per_channel:
            why = per_channel[channel]
        else:
            why = per_channel[channel] = self._channel_reason(context.customer, channel)
        if why is not None:
            return why
        for test in self.eligibility:
            if test.covers(action) and not test.passes(context.customer):
                return test.reason
        if active:
            category = action.features.get("category")
            for sup in active:
                if category in sup.block_categories or (
                    sup.allow_only_categories is not None
                    and category not in sup.allow_only_categories
                ):
                    return f"suppressed:{sup.when}"
        quiet = self.quiet_hours
        in_quiet = quiet is not None and hour is not None and quiet.covers(hour)
        if in_quiet and channel in quiet.channels:  # type: ignore[union-attr]
            return "quiet_hours"
        esc = self.escalation
        if esc is not None and esc.gates(action):
            if escalated is None:
                escalated = []
            if not escalated:
                escalated.append(esc.signalled(context))  # once per split
            if not escalated[0]:
                return "no_escalation_signal"
        if channel == "agent" and self.agent_routing is not None:
            return self._agent_reason(context, action)
        return None

    def _agent_reason(self, context: Context, action: Action) -> str | None:
        # the case is read once per request (the last one is kept, as one tuple so
        # threads cannot mix one request's context with another's case)
        memo = self._routing_memo[0]
        if memo is None or memo[0] is not context:
            routing = self.agent_routing
            assert routing is not None
            case = RoutingCase.of(context, routing.retention_churn_risk, routing.retention_tiers)
            memo = self._routing_memo[0] = (context, case)
        return memo[1].reason(action.features)

    def split(
        self, context: Context, actions: Sequence[Action]
    ) -> tuple[list[Action], list[Exclusion]]:
        """Partition ``actions`` into the eligible ones and the excluded ones with reasons.

        Parameters
        ----------
        context: Context
            The customer's features and the request context.
        actions: sequence of Action, length n_actions
            The decision point's candidates.

        Returns
        -------
        eligible: list of Action, length n_eligible
            In their input order.
        excluded: list of Exclusion, length n_actions - n_eligible
            Each action id with its machine-readable reason.
        """
        hour = None
        if self.quiet_hours is not None:
            hour = local_hour(context.timestamp, context.customer.get("timezone"))
        eligible: list[Action] = []
        excluded: list[Exclusion] = []
        active = self._active(context)
        per_channel: dict[str, str | None] = {}  # channel-level verdicts, computed once
        escalated: list[bool] = []  # the escalation signal, computed at most once
        failing = self.when.reasons(context, actions)  # every condition evaluated once
        for action in actions:
            why = self._reason(context, action, hour, active, per_channel, escalated)
            if why is None and failing:
                why = failing.get(action.id)
            if why is None:
                eligible.append(action)
            else:
                excluded.append(Exclusion(action.id, why))
        return eligible, excluded
