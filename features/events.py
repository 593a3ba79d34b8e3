"""Customer events (``POST /events``): validation and the features each event changes.

:func:`parse_event` turns a request body into an :class:`Event` or raises
:class:`~features.errors.InvalidEventError` naming the field; :func:`apply_event` is the
pure function from an event and the customer's current view rows to the new full rows
of the views it changes. :class:`features.event_writer.EventWriter` writes those rows
to Feast.

What each type changes (view → features):

=================  ===========================================================
``page_view``      session: ``last_page``, ``session_pages`` +1, ``rapid_clicks``
                   (+1 when within 2 s of the previous event), ``last_event_ts``
``cart_updated``   session: ``cart_value``, ``last_event_ts``
``purchase``       session: ``cart_value`` = 0, ``last_event_ts``
``message_opened`` engagement: ``opens_<channel>_7d`` and ``_30d`` +1
``message_clicked`` engagement: ``clicks_<channel>_7d`` and ``_30d`` +1
``complaint_opened`` service: ``open_complaint`` = True, ``open_tickets`` +1
``complaint_closed`` service: ``open_complaint`` = False, ``open_tickets`` −1 (≥ 0),
                   ``last_csat`` = ``csat`` when given
``invoice_overdue`` billing: ``overdue_invoice`` = True, ``days_overdue`` (given, else ≥ 1)
``invoice_paid``   billing: ``overdue_invoice`` = False, ``days_overdue`` = 0
``consent_changed`` consent: ``consent_<channel>`` = ``granted``
``agent_interaction`` service: ``last_agent_id`` = ``agent_id`` (routing's continuity
                   feature), ``last_csat`` = ``csat`` when given
=================  ===========================================================

A session ends after 30 minutes without activity: the next session event starts a new
one (``session_pages`` and ``rapid_clicks`` restart from 0; the cart is kept).
Properties not listed for a type are accepted and ignored (journey engines add their
own metadata); listed ones are checked strictly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from features.errors import InvalidEventError
from features.schema import CHANNELS, DEFAULTS, GROUPS
from features.source import FeatureValue

SESSION_GAP_SECONDS = 30 * 60
RAPID_CLICK_SECONDS = 2.0
MAX_ID_LENGTH = 128
MAX_TEXT_LENGTH = 256
#: A view row's time over the previous one: Feast's Redis store skips a row not newer than
#: the stored one, and a view's age (for TTL) is its latest write.
MIN_STEP = 0.001


@dataclass(frozen=True)
class Prop:
    """One property of an event type: its kind (``str``, ``number``, ``int``, ``bool``,
    ``channel``), whether it is required, and the inclusive bounds of a number."""

    kind: str
    required: bool = True
    low: float | None = None
    high: float | None = None


#: Event type → its properties. The contract's types.
EVENT_TYPES: dict[str, dict[str, Prop]] = {
    "page_view": {"page": Prop("str")},
    "cart_updated": {"cart_value": Prop("number", low=0.0)},
    "purchase": {"value": Prop("number", required=False, low=0.0)},
    "message_opened": {"channel": Prop("channel")},
    "message_clicked": {"channel": Prop("channel")},
    "complaint_opened": {},
    "complaint_closed": {"csat": Prop("number", required=False, low=1.0, high=5.0)},
    "invoice_overdue": {"days_overdue": Prop("int", required=False, low=0, high=36_500)},
    "invoice_paid": {},
    "consent_changed": {"channel": Prop("channel"), "granted": Prop("bool")},
    # beyond the contract's "at least" list: a contact-centre conversation
    "agent_interaction": {
        "agent_id": Prop("str"),
        "csat": Prop("number", required=False, low=1.0, high=5.0),
    },
}
#: The views each event type writes.
EVENT_VIEWS: dict[str, str] = {
    "page_view": "customer_session",
    "cart_updated": "customer_session",
    "purchase": "customer_session",
    "message_opened": "customer_engagement",
    "message_clicked": "customer_engagement",
    "complaint_opened": "customer_service",
    "complaint_closed": "customer_service",
    "invoice_overdue": "customer_billing",
    "invoice_paid": "customer_billing",
    "consent_changed": "customer_consent",
    "agent_interaction": "customer_service",
}
_TOP_LEVEL = {"customer_id", "type", "properties", "timestamp"}


@dataclass(frozen=True)
class Event:
    """A validated event; ``timestamp`` in epoch seconds (UTC)."""

    customer_id: str
    type: str
    properties: Mapping[str, Any]
    timestamp: float

    @property
    def view(self) -> str:
        """The feature view this event writes."""
        return EVENT_VIEWS[self.type]


def _check_prop(name: str, spec: Prop, value: Any) -> Any:
    field = f"properties.{name}"
    if spec.kind in {"str", "channel"}:
        if not isinstance(value, str) or not value:
            raise InvalidEventError(f"{field} must be a non-empty string", field=field)
        if len(value) > MAX_TEXT_LENGTH:
            raise InvalidEventError(f"{field} is longer than {MAX_TEXT_LENGTH}", field=field)
        if spec.kind == "channel" and value not in CHANNELS:
            raise InvalidEventError(
                f"{field} must be one of {', '.join(CHANNELS)}, not {value!r}", field=field
            )
        return value
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise InvalidEventError(f"{field} must be true or false", field=field)
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEventError(f"{field} must be a number", field=field)
    if not math.isfinite(value):
        raise InvalidEventError(f"{field} must be a finite number", field=field)
    if spec.kind == "int":
        if value != int(value):
            raise InvalidEventError(f"{field} must be an integer", field=field)
        value = int(value)
    if (spec.low is not None and value < spec.low) or (spec.high is not None and value > spec.high):
        raise InvalidEventError(f"{field} must be in [{spec.low}, {spec.high}]", field=field)
    return value


def _parse_timestamp(value: Any, now: float) -> float:
    if value is None:
        return now
    if isinstance(value, bool):
        raise InvalidEventError(
            "timestamp must be an ISO 8601 string or epoch seconds", field="timestamp"
        )
    if isinstance(value, int | float):
        ts = float(value)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidEventError(
                f"timestamp {value!r} is not ISO 8601", field="timestamp"
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        ts = parsed.timestamp()
    else:
        raise InvalidEventError(
            "timestamp must be an ISO 8601 string or epoch seconds", field="timestamp"
        )
    if not math.isfinite(ts) or ts < 0 or ts > now + 86_400:
        raise InvalidEventError(
            "timestamp is out of range (negative or over a day ahead)", field="timestamp"
        )
    return ts


def parse_event(payload: Mapping[str, Any] | Event, now: float | None = None) -> Event:
    """Validate a ``POST /events`` body (a mapping, or any record with the attributes
    ``customer_id``, ``type``, ``properties``, ``timestamp``); raises
    :class:`InvalidEventError` naming the field. No timestamp: ``now``."""
    import time

    if isinstance(payload, Event):
        return payload
    now = time.time() if now is None else now
    if not isinstance(payload, Mapping) and all(hasattr(payload, a) for a in _TOP_LEVEL):
        # an event record of another layer (e.g. serving's FeatureEvent); 0 = no timestamp
        payload = {a: getattr(payload, a) for a in _TOP_LEVEL}
        payload["timestamp"] = payload["timestamp"] or None
    if not isinstance(payload, Mapping):
        raise InvalidEventError("an event must be a JSON object", field="body")
    unknown = sorted(set(payload) - _TOP_LEVEL)
    if unknown:
        raise InvalidEventError(f"unknown field {unknown[0]!r}", field=unknown[0])
    cid = payload.get("customer_id")
    if not isinstance(cid, str) or not cid or len(cid) > MAX_ID_LENGTH:
        raise InvalidEventError(
            f"customer_id must be a non-empty string of at most {MAX_ID_LENGTH} characters",
            field="customer_id",
        )
    kind = payload.get("type")
    if not isinstance(kind, str) or kind not in EVENT_TYPES:
        raise InvalidEventError(
            f"unknown event type {kind!r}; expected one of {', '.join(EVENT_TYPES)}", field="type"
        )
    props = payload.get("properties", {})
    if props is None:
        props = {}
    if not isinstance(props, Mapping):
        raise InvalidEventError("properties must be a JSON object", field="properties")
    checked: dict[str, Any] = {}
    for name, spec in EVENT_TYPES[kind].items():
        if name not in props or props[name] is None:
            if spec.required:
                raise InvalidEventError(
                    f"properties.{name} is required for {kind}", field=f"properties.{name}"
                )
            continue
        checked[name] = _check_prop(name, spec, props[name])
    return Event(cid, kind, checked, _parse_timestamp(payload.get("timestamp"), now))


def view_defaults(view: str) -> dict[str, FeatureValue]:
    """The documented defaults of one view's features."""
    return {name: DEFAULTS[name] for name in GROUPS[view]}


def apply_event(
    event: Event, current: Mapping[str, FeatureValue] | None
) -> dict[str, FeatureValue]:
    """The new full row of ``event.view`` given its current row (``None``: no row yet)."""
    row = view_defaults(event.view)
    if current:
        row.update({k: v for k, v in current.items() if k in row})
    p, ts = event.properties, event.timestamp
    kind = event.type
    if event.view == "customer_session":
        last = float(row["last_event_ts"] or 0.0)
        if last and ts - last > SESSION_GAP_SECONDS:
            row["session_pages"], row["rapid_clicks"] = 0, 0
        if kind == "page_view":
            row["last_page"] = p["page"]
            row["session_pages"] = int(row["session_pages"]) + 1
            if last and 0 <= ts - last <= RAPID_CLICK_SECONDS:
                row["rapid_clicks"] = int(row["rapid_clicks"]) + 1
        elif kind == "cart_updated":
            row["cart_value"] = float(p["cart_value"])
        else:  # purchase
            row["cart_value"] = 0.0
        row["last_event_ts"] = max(last, ts)
    elif kind in {"message_opened", "message_clicked"}:
        metric = "opens" if kind == "message_opened" else "clicks"
        for window in ("7d", "30d"):
            name = f"{metric}_{p['channel']}_{window}"
            row[name] = int(row[name]) + 1
    elif kind == "complaint_opened":
        row["open_complaint"] = True
        row["open_tickets"] = int(row["open_tickets"]) + 1
    elif kind == "complaint_closed":
        row["open_complaint"] = False
        row["open_tickets"] = max(0, int(row["open_tickets"]) - 1)
        if "csat" in p:
            row["last_csat"] = float(p["csat"])
    elif kind == "invoice_overdue":
        row["overdue_invoice"] = True
        row["days_overdue"] = int(p.get("days_overdue", max(int(row["days_overdue"]), 1)))
    elif kind == "invoice_paid":
        row["overdue_invoice"], row["days_overdue"] = False, 0
    elif kind == "consent_changed":
        row[f"consent_{p['channel']}"] = bool(p["granted"])
    elif kind == "agent_interaction":
        row["last_agent_id"] = str(p["agent_id"])
        if "csat" in p:
            row["last_csat"] = float(p["csat"])
    return row


def fold_events(
    events: Sequence[Event], current: tuple[float, Mapping[str, FeatureValue]] | None
) -> tuple[float, dict[str, FeatureValue], frozenset[str]] | None:
    """Apply ``events`` (all of one customer and view) in order to the view's current row
    ``(time, values)`` (``None``: no row yet). Returns the new row's time, full values and
    the features that differ from ``current`` (every feature when there was no row), or
    ``None`` when the events change nothing. The row's time is the latest event's, and
    at least :data:`MIN_STEP` past the previous row's."""
    if not events:
        return None
    ts = current[0] if current is not None else None
    values: Mapping[str, FeatureValue] | None = current[1] if current is not None else None
    for event in events:
        values = apply_event(event, values)
        ts = event.timestamp if ts is None else max(event.timestamp, ts + MIN_STEP)
    assert values is not None and ts is not None
    if current is None:
        return ts, dict(values), frozenset(values)
    before = current[1]
    changed = frozenset(k for k, v in values.items() if before.get(k) != v)
    return (ts, dict(values), changed) if changed else None
