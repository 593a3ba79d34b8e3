"""What the serving layer needs from the feature layer, and the in-memory implementation.

Reading features is :class:`features.source.FeatureSource` (``get``, ``ping``). ``POST
/events`` and ``DELETE /customers/{id}`` need two more verbs, the :class:`FeatureWriter`
protocol: ``ingest(event)`` (the real-time features it changes are visible to the next
``get``) and ``erase(customer_id)`` (counts of what was removed).
:class:`InMemoryFeatureLayer` implements both protocols for tests and demos; the
Feast-backed layer adapts :mod:`features.feast_source` / :mod:`features.events` /
:mod:`features.erasure` (see :mod:`serving.factory`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from features.errors import InvalidEventError
from features.source import CustomerFeatures, FeatureValue, InMemoryFeatureSource

#: the contract's event types
EVENT_TYPES: frozenset[str] = frozenset(
    {
        "page_view",
        "cart_updated",
        "purchase",
        "message_opened",
        "message_clicked",
        "complaint_opened",
        "complaint_closed",
        "invoice_overdue",
        "invoice_paid",
        "consent_changed",
    }
)
_CONTACT = ("email", "push", "sms", "in_app", "whatsapp", "call_center")


@dataclass(frozen=True, slots=True)
class FeatureEvent:
    """One customer event (``POST /events``); ``timestamp`` in epoch seconds (0: now)."""

    customer_id: str
    type: str
    properties: Mapping[str, FeatureValue] = field(default_factory=dict)
    timestamp: float = 0.0


@runtime_checkable
class FeatureWriter(Protocol):
    def ingest(self, event: FeatureEvent) -> None:
        """Apply ``event``; raise :class:`InvalidEventError` (422) for a malformed one."""
        ...

    def erase(self, customer_id: str) -> dict[str, int]:
        """Remove every feature row of ``customer_id``; return counts per store."""
        ...


def _channel(event: FeatureEvent) -> str:
    channel = event.properties.get("channel")
    if channel not in _CONTACT:
        raise InvalidEventError(
            f"{event.type}: properties.channel must be one of {', '.join(_CONTACT)}",
            field="properties.channel",
        )
    return str(channel)


def event_updates(
    event: FeatureEvent, current: Mapping[str, FeatureValue]
) -> dict[str, FeatureValue]:
    """The feature values ``event`` sets, given the customer's ``current`` values."""
    props, kind = event.properties, event.type
    out: dict[str, FeatureValue] = {"last_event_ts": event.timestamp or time.time()}

    def bump(name: str) -> None:
        value = current.get(name, 0)
        out[name] = (value if isinstance(value, int) and not isinstance(value, bool) else 0) + 1

    if kind not in EVENT_TYPES:
        raise InvalidEventError(
            f"unknown event type {kind!r}; expected one of {', '.join(sorted(EVENT_TYPES))}",
            field="type",
        )
    if kind == "consent_changed":
        granted = props.get("granted")
        if not isinstance(granted, bool):
            raise InvalidEventError(
                "consent_changed: properties.granted must be a boolean", field="properties.granted"
            )
        out[f"consent_{_channel(event)}"] = granted
    elif kind == "page_view":
        out["last_page"] = str(props.get("page", ""))
        bump("session_pages")
    elif kind == "cart_updated":
        value = props.get("cart_value", 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidEventError(
                "cart_updated: properties.cart_value must be a number",
                field="properties.cart_value",
            )
        out["cart_value"] = float(value)
    elif kind == "purchase":
        out["cart_value"] = 0.0
    elif kind in ("message_opened", "message_clicked"):
        metric = "opens" if kind == "message_opened" else "clicks"
        channel = _channel(event)
        bump(f"{metric}_{channel}_7d")
        bump(f"{metric}_{channel}_30d")
    elif kind in ("complaint_opened", "complaint_closed"):
        out["open_complaint"] = kind == "complaint_opened"
    elif kind in ("invoice_overdue", "invoice_paid"):
        out["overdue_invoice"] = kind == "invoice_overdue"
        if kind == "invoice_paid":
            out["days_overdue"] = 0
    return out


class InMemoryFeatureLayer:
    """:class:`FeatureSource` + :class:`FeatureWriter` over an :class:`InMemoryFeatureSource`."""

    def __init__(self, source: InMemoryFeatureSource | None = None) -> None:
        self.source = source or InMemoryFeatureSource()

    @property
    def available(self) -> bool:
        return self.source.available

    @available.setter
    def available(self, value: bool) -> None:
        self.source.available = value

    def get(self, customer_id: str) -> CustomerFeatures:
        return self.source.get(customer_id)

    def ping(self) -> bool:
        return self.source.ping()

    def ingest(self, event: FeatureEvent) -> None:
        current = self.source.get(event.customer_id).values
        self.source.update(event.customer_id, event_updates(event, current))

    def erase(self, customer_id: str) -> dict[str, int]:
        return {"online": self.source.erase(customer_id)}


def now() -> float:
    return time.time()
