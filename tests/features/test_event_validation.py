"""Unit tests: event validation tables, the features each event changes, the overlay."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from features.errors import InvalidEventError
from features.events import (
    EVENT_TYPES,
    EVENT_VIEWS,
    SESSION_GAP_SECONDS,
    Event,
    apply_event,
    parse_event,
    view_defaults,
)
from features.overlay import Overlay
from features.schema import GROUPS

NOW = 1_800_000_000.0


def ev(kind: str, props: dict | None = None, **extra) -> dict:
    body = {"customer_id": "c-000001", "type": kind, "properties": props or {}}
    body.update(extra)
    return body


GOOD = [
    ev("page_view", {"page": "checkout"}),
    ev("cart_updated", {"cart_value": 89.5}),
    ev("cart_updated", {"cart_value": 0}),
    ev("purchase", {"value": 12.0}),
    ev("purchase"),
    ev("message_opened", {"channel": "email"}),
    ev("message_clicked", {"channel": "whatsapp"}),
    ev("complaint_opened", {"ticket_id": "T-1"}),
    ev("complaint_closed", {"csat": 4}),
    ev("complaint_closed"),
    ev("invoice_overdue", {"days_overdue": 12}),
    ev("invoice_overdue"),
    ev("invoice_paid"),
    ev("consent_changed", {"channel": "sms", "granted": False}),
    ev("page_view", {"page": "home", "referrer": "ad"}),  # extra properties are ignored
    ev("page_view", {"page": "home"}, timestamp="2027-01-15T10:00:00Z"),
    ev("page_view", {"page": "home"}, timestamp=NOW - 5),
]


@pytest.mark.parametrize("body", GOOD, ids=lambda b: b["type"])
def test_contract_event_types_validate(body: dict) -> None:
    event = parse_event(body, now=NOW)
    assert event.type == body["type"]
    assert event.view in GROUPS
    assert set(event.properties) <= set(EVENT_TYPES[event.type])


def test_every_contract_type_is_known() -> None:
    contract = {
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
    # Maestro adds one type beyond the contract's "at least" list
    assert set(EVENT_TYPES) == contract | {"agent_interaction"} == set(EVENT_VIEWS)


def test_agent_interaction_sets_the_continuity_feature() -> None:
    from features.events import apply_event

    event = parse_event(ev("agent_interaction", {"agent_id": "agent-7", "csat": 4.5}), now=NOW)
    row = apply_event(event, {"open_tickets": 2, "last_agent_id": "agent-1"})
    assert row["last_agent_id"] == "agent-7" and row["last_csat"] == 4.5
    assert row["open_tickets"] == 2  # the rest of the service row is kept
    with pytest.raises(InvalidEventError) as err:
        parse_event(ev("agent_interaction"), now=NOW)
    assert err.value.field == "properties.agent_id"


BAD = [
    (ev("teleported"), "type", "unknown event type"),
    ({"customer_id": "c-1", "properties": {}}, "type", "unknown event type"),
    (ev("page_view"), "properties.page", "required"),
    (ev("page_view", {"page": ""}), "properties.page", "non-empty string"),
    (ev("page_view", {"page": 7}), "properties.page", "non-empty string"),
    (ev("page_view", {"page": "x" * 300}), "properties.page", "longer"),
    (ev("cart_updated", {"cart_value": "12"}), "properties.cart_value", "must be a number"),
    (ev("cart_updated", {"cart_value": True}), "properties.cart_value", "must be a number"),
    (ev("cart_updated", {"cart_value": math.nan}), "properties.cart_value", "finite"),
    (ev("cart_updated", {"cart_value": math.inf}), "properties.cart_value", "finite"),
    (ev("cart_updated", {"cart_value": -1}), "properties.cart_value", r"\[0.0"),
    (ev("message_opened", {"channel": "pigeon"}), "properties.channel", "must be one of"),
    (ev("message_clicked"), "properties.channel", "required"),
    (ev("complaint_closed", {"csat": 9}), "properties.csat", r"\[1.0, 5.0\]"),
    (ev("invoice_overdue", {"days_overdue": 2.5}), "properties.days_overdue", "integer"),
    (ev("consent_changed", {"channel": "sms"}), "properties.granted", "required"),
    (
        ev("consent_changed", {"channel": "sms", "granted": "no"}),
        "properties.granted",
        "true or false",
    ),
    (
        ev("consent_changed", {"channel": "fax", "granted": False}),
        "properties.channel",
        "must be one of",
    ),
    (ev("consent_changed", {"granted": False}), "properties.channel", "required"),
    ({"type": "page_view", "properties": {"page": "a"}}, "customer_id", "customer_id"),
    (ev("page_view", {"page": "a"}, customer_id=""), "customer_id", "non-empty"),
    (ev("page_view", {"page": "a"}, customer_id=42), "customer_id", "non-empty"),
    (ev("page_view", {"page": "a"}, customer_id="c" * 200), "customer_id", "at most"),
    (ev("page_view", {"page": "a"}, colour="red"), "colour", "unknown field"),
    (ev("invoice_paid", ["x"]), "properties", "JSON object"),
    (ev("invoice_paid", timestamp="yesterday"), "timestamp", "ISO 8601"),
    (ev("invoice_paid", timestamp=True), "timestamp", "ISO 8601"),
    (ev("invoice_paid", timestamp=-5), "timestamp", "out of range"),
    (ev("invoice_paid", timestamp=NOW + 10 * 86400), "timestamp", "out of range"),
    ("not an object", "body", "JSON object"),
]


@pytest.mark.parametrize(
    ("body", "field", "message"), BAD, ids=[f"{i}-{b[1]}" for i, b in enumerate(BAD)]
)
def test_malformed_events_name_the_field(body: object, field: str, message: str) -> None:
    with pytest.raises(InvalidEventError, match=message) as info:
        parse_event(body, now=NOW)  # type: ignore[arg-type]
    assert info.value.field == field
    assert info.value.http_status == 422


def test_timestamps_parse_to_epoch_seconds() -> None:
    assert parse_event(ev("invoice_paid"), now=NOW).timestamp == NOW
    iso = parse_event(ev("invoice_paid", timestamp="2027-01-15T10:00:00+00:00"), now=NOW)
    naive = parse_event(ev("invoice_paid", timestamp="2027-01-15T10:00:00"), now=NOW)
    assert iso.timestamp == naive.timestamp == 1_800_007_200.0


def test_records_with_event_attributes_are_accepted() -> None:
    @dataclass
    class Other:
        customer_id: str
        type: str
        properties: dict
        timestamp: float = 0.0

    event = parse_event(Other("c-000009", "page_view", {"page": "help"}), now=NOW)
    assert (event.customer_id, event.timestamp) == ("c-000009", NOW)  # 0 means "now"
    with pytest.raises(InvalidEventError, match="unknown event type"):
        parse_event(Other("c-000009", "nope", {}), now=NOW)


def _apply(kind: str, props: dict, current: dict | None = None, ts: float = NOW) -> dict:
    event = parse_event(ev(kind, props, timestamp=ts), now=NOW)
    return apply_event(event, current)


EFFECTS = [
    (
        "page_view",
        {"page": "checkout"},
        {"last_page": "checkout", "session_pages": 1, "last_event_ts": NOW, "rapid_clicks": 0},
    ),
    ("cart_updated", {"cart_value": 42.0}, {"cart_value": 42.0, "last_event_ts": NOW}),
    ("purchase", {}, {"cart_value": 0.0}),
    (
        "message_opened",
        {"channel": "sms"},
        {"opens_sms_7d": 1, "opens_sms_30d": 1, "opens_email_7d": 0},
    ),
    ("message_clicked", {"channel": "push"}, {"clicks_push_7d": 1, "clicks_push_30d": 1}),
    ("complaint_opened", {}, {"open_complaint": True, "open_tickets": 1}),
    (
        "complaint_closed",
        {"csat": 2.0},
        {"open_complaint": False, "open_tickets": 0, "last_csat": 2.0},
    ),
    ("invoice_overdue", {}, {"overdue_invoice": True, "days_overdue": 1}),
    ("invoice_overdue", {"days_overdue": 30}, {"overdue_invoice": True, "days_overdue": 30}),
    ("invoice_paid", {}, {"overdue_invoice": False, "days_overdue": 0}),
    (
        "consent_changed",
        {"channel": "email", "granted": True},
        {"consent_email": True, "consent_sms": False},
    ),
]


@pytest.mark.parametrize(("kind", "props", "expected"), EFFECTS, ids=[e[0] for e in EFFECTS])
def test_event_effects_on_a_new_row(kind: str, props: dict, expected: dict) -> None:
    row = _apply(kind, props)
    view = EVENT_VIEWS[kind]
    assert set(row) == set(GROUPS[view])  # always a full row of the view
    for name, value in expected.items():
        assert row[name] == value, name
        assert type(row[name]) is GROUPS[view][name], name


def test_counters_build_on_the_current_row() -> None:
    current = {**view_defaults("customer_service"), "open_tickets": 2, "open_complaint": True}
    row = _apply("complaint_closed", {}, current)
    assert row == {
        "open_tickets": 1,
        "open_complaint": False,
        "last_csat": 0.0,
        "last_agent_id": "",
    }
    current = {**view_defaults("customer_engagement"), "opens_sms_7d": 3, "opens_sms_30d": 9}
    row = _apply("message_opened", {"channel": "sms"}, current)
    assert (row["opens_sms_7d"], row["opens_sms_30d"]) == (4, 10)


def test_session_rapid_clicks_and_gap() -> None:
    row = _apply("page_view", {"page": "a"}, ts=NOW - 100)
    row = _apply("page_view", {"page": "b"}, row, ts=NOW - 99)  # within 2 s: rapid
    assert (row["session_pages"], row["rapid_clicks"], row["last_page"]) == (2, 1, "b")
    row = _apply("page_view", {"page": "c"}, row, ts=NOW - 50)  # 49 s later: not rapid
    assert (row["session_pages"], row["rapid_clicks"]) == (3, 1)
    row = _apply("cart_updated", {"cart_value": 10.0}, row, ts=NOW - 40)
    later = NOW - 40 + SESSION_GAP_SECONDS + 1
    row = _apply("page_view", {"page": "d"}, row, ts=later)  # new session, cart kept
    assert (row["session_pages"], row["rapid_clicks"], row["cart_value"]) == (1, 0, 10.0)
    assert row["last_event_ts"] == later
    late = _apply("page_view", {"page": "e"}, row, ts=later - 1000)  # a late event
    assert late["last_event_ts"] == later


def test_overlay_versions_keep_newer_rows() -> None:
    overlay = Overlay()
    assert overlay.snapshot("c") == {}
    overlay.put("c", "customer_consent", 1.0, {"consent_sms": False})
    flushed = overlay.pending()
    overlay.put("c", "customer_consent", 2.0, {"consent_sms": True})  # changed during a push
    overlay.done(flushed)
    assert overlay.snapshot("c") == {"customer_consent": (2.0, {"consent_sms": True})}
    overlay.done(overlay.pending())
    assert overlay.snapshot("c") == {} and len(overlay) == 0
    overlay.put("c", "customer_session", 1.0, {})
    overlay.put("d", "customer_session", 1.0, {})
    assert overlay.erase("c") == 1 and len(overlay) == 1
    snap = overlay.snapshot("d")
    snap["customer_session"][1]["x"] = 1  # a copy: the overlay is unchanged
    assert overlay.snapshot("d") == {"customer_session": (1.0, {})}


def test_overlay_rows_remember_when_their_oldest_data_arrived() -> None:
    """``since`` (what erasure tombstones are compared with) is the first acceptance of a
    row's unwritten data: kept while events fold into it, carried from deferred events to
    the row they resolve to, fresh once the row was written."""
    import time

    overlay = Overlay()
    before = time.time()
    overlay.defer("c", "customer_session", parse_event(ev("page_view", {"page": "a"}), now=NOW))
    ((_, _, deferred),) = overlay.deferred()
    assert before <= deferred.since <= time.time()
    overlay.resolve("c", "customer_session", deferred, (1.0, {"last_page": "a"}, frozenset()))
    ((_, _, row),) = overlay.pending()
    assert row.since == deferred.since
    time.sleep(0.002)
    overlay.put("c", "customer_session", 2.0, {"last_page": "b"})
    ((_, _, newer),) = overlay.pending()
    assert newer.since == deferred.since and newer.version > row.version
    overlay.done([("c", "customer_session", newer)])
    overlay.put("c", "customer_session", 3.0, {"last_page": "c"})
    ((_, _, fresh),) = overlay.pending()
    assert fresh.since > deferred.since


def test_event_is_frozen() -> None:
    event = parse_event(ev("invoice_paid"), now=NOW)
    assert isinstance(event, Event)
    with pytest.raises(AttributeError):
        event.type = "x"  # type: ignore[misc]
