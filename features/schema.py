"""The customer feature schema: names, types, groups (one Feast feature view each)
and the documented defaults for a customer the store does not know.

This is the contract between the feature store, the business rules
(``policies/catalog.yaml`` reads ``consent_<channel>``, ``sends_<channel>_7d``,
``open_complaint``, ``overdue_invoice``, ``timezone``) and the simulator.
"""

from __future__ import annotations

from types import MappingProxyType

CHANNELS: tuple[str, ...] = ("email", "push", "sms", "in_app", "whatsapp", "call_center")

PROFILE: dict[str, type] = {
    "segment": str,
    "tier": str,
    "tenure_days": int,
    "lifetime_value": float,
    "churn_risk": float,
    "timezone": str,
    "language": str,
}
ENGAGEMENT: dict[str, type] = {
    f"{metric}_{channel}_{window}": int
    for channel in CHANNELS
    for window in ("7d", "30d")
    for metric in ("sends", "opens", "clicks")
} | {f"last_contact_{channel}_ts": float for channel in CHANNELS}
#: ``last_agent_id``: the contact-centre agent who served the customer last ("" for none;
#: read by :func:`policies.routing.with_continuity` as the continuity feature).
SERVICE: dict[str, type] = {
    "open_tickets": int,
    "open_complaint": bool,
    "last_csat": float,
    "last_agent_id": str,
}
BILLING: dict[str, type] = {"overdue_invoice": bool, "days_overdue": int}
CONSENT: dict[str, type] = {f"consent_{channel}": bool for channel in CHANNELS}
#: Real-time session signals, written by ``POST /events`` through a Feast push source.
SESSION: dict[str, type] = {
    "last_page": str,
    "session_pages": int,
    "cart_value": float,
    "rapid_clicks": int,
    "last_event_ts": float,
}

#: feature view name → its features
GROUPS: dict[str, dict[str, type]] = {
    "customer_profile": PROFILE,
    "customer_engagement": ENGAGEMENT,
    "customer_service": SERVICE,
    "customer_billing": BILLING,
    "customer_consent": CONSENT,
    "customer_session": SESSION,
}
ALL_FEATURES: dict[str, type] = {k: v for group in GROUPS.values() for k, v in group.items()}

_DEFAULTS: dict[str, object] = {
    "segment": "unknown",
    "tier": "standard",
    "tenure_days": 0,
    "lifetime_value": 0.0,
    "churn_risk": 0.0,
    "timezone": "UTC",
    "language": "en",
    "open_tickets": 0,
    "open_complaint": False,
    "last_csat": 0.0,
    "last_agent_id": "",
    "overdue_invoice": False,
    "days_overdue": 0,
    "last_page": "",
    "session_pages": 0,
    "cart_value": 0.0,
    "rapid_clicks": 0,
    "last_event_ts": 0.0,
}
for _name, _typ in ENGAGEMENT.items():
    _DEFAULTS[_name] = 0.0 if _typ is float else 0
for _name in CONSENT:
    _DEFAULTS[_name] = False  # no record of consent means no consent

#: Values served for a customer the store does not know. Consent defaults to False.
DEFAULTS = MappingProxyType(_DEFAULTS)

#: Time to live of each feature view (seconds; 0 = never expires). A value older than its
#: view's TTL is still served but flagged in ``CustomerFeatures.stale``. Consent never
#: expires: it holds until a ``consent_changed`` event changes it.
TTL_SECONDS: dict[str, int] = {
    "customer_profile": 30 * 86400,
    "customer_engagement": 2 * 86400,
    "customer_service": 2 * 86400,
    "customer_billing": 2 * 86400,
    "customer_consent": 0,
    "customer_session": 30 * 60,
}

#: The feature view each feature belongs to.
VIEW_OF: dict[str, str] = {name: view for view, group in GROUPS.items() for name in group}

#: The contact-centre agents: Feast entity ``agent`` (join key ``agent_id``),
#: feature view ``agent`` (not a customer view: not in :data:`GROUPS`). ``skills`` and
#: ``languages`` are comma-separated lists, ``level`` the agent's skill level, ``load`` the
#: cases in hand and ``capacity`` the most at once; ``available`` is False for an agent not
#: taking cases now. The same shape as a caller-sent agent action (``CONTRACT.md``).
AGENT_VIEW = "agent"
AGENT_JOIN_KEY = "agent_id"
AGENT_FEATURES: dict[str, type] = {
    "skills": str,
    "level": int,
    "languages": str,
    "load": int,
    "capacity": int,
    "available": bool,
}
