"""Integration: the event writer's batched path, against real Feast SQLite and a real
redis-server — events deferred at ingest (no store read), their base rows read in bulk at
flush time, folded in order; consent written through; erasure while events are pending."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from features.errors import FeatureStoreUnavailable
from features.events import MIN_STEP, fold_events, parse_event
from features.overlay import Deferred, PendingRow

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Stream feature views:RuntimeWarning"),
]


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest):
    """``(source, other)``: the writer's source and an independent one (another
    process's view) on the same online store, SQLite or Redis."""
    from features.feast.source import open_feature_source

    home: Path = request.getfixturevalue(
        "workspace" if request.param == "sqlite" else "redis_workspace"
    )
    source = open_feature_source(home, timeout=2.0)
    other = open_feature_source(home, timeout=2.0)
    yield source, other
    source.close()
    other.close()


@pytest.fixture
def writer(store):
    """A writer whose background thread is off: the test decides when to flush."""
    from features.event_writer import EventWriter

    w = EventWriter(store[0], start=False)
    reads: list[int] = []
    read_many = w._bulk.read_many

    def counted(keys):
        reads.append(len(keys))
        return read_many(keys)

    w._bulk.read_many = counted  # type: ignore[method-assign]
    w.bulk_reads = reads  # type: ignore[attr-defined]
    yield w
    w.close()


def _ingest(writer, cid: str, kind: str, **props) -> None:
    writer.ingest({"customer_id": cid, "type": kind, "properties": props})


def test_events_of_one_customer_fold_in_order_in_one_flush(store, writer) -> None:
    source, other = store
    cid = "c-000125"
    before = other.get(cid).values
    _ingest(writer, cid, "page_view", page="home")
    _ingest(writer, cid, "page_view", page="cart")
    _ingest(writer, cid, "cart_updated", cart_value=42.0)
    _ingest(writer, cid, "purchase")
    _ingest(writer, cid, "cart_updated", cart_value=7.5)
    _ingest(writer, cid, "message_opened", channel="sms")
    _ingest(writer, cid, "message_opened", channel="sms")
    _ingest(writer, cid, "complaint_opened")
    _ingest(writer, cid, "complaint_closed", csat=4)
    # nothing was read at ingest: every view's events wait, in order, for one bulk read
    assert {
        type(writer.overlay.entry(cid, v))
        for v in ("customer_session", "customer_engagement", "customer_service")
    } == {Deferred}
    assert writer.bulk_reads == []
    assert writer.flush() == 3
    assert writer.bulk_reads == [3]  # one round trip for the three views
    after = other.get(cid).values  # from the store
    assert after["last_page"] == "cart" and after["cart_value"] == 7.5
    assert after["session_pages"] >= 2
    assert after["opens_sms_7d"] == before["opens_sms_7d"] + 2
    assert after["opens_sms_30d"] == before["opens_sms_30d"] + 2
    assert after["open_tickets"] == before["open_tickets"]  # opened, then closed
    assert (after["open_complaint"], after["last_csat"]) == (False, 4.0)
    assert after["segment"] == before["segment"]  # batch profile untouched
    assert len(source.overlay) == 0


def test_next_read_in_process_sees_deferred_events_then_later_ones_apply_on_it(
    store, writer
) -> None:
    source, other = store
    cid = "c-000126"
    base = other.get(cid).values["clicks_email_30d"]
    _ingest(writer, cid, "message_clicked", channel="email")
    assert type(writer.overlay.entry(cid, "customer_engagement")) is Deferred
    assert source.get(cid).values["clicks_email_30d"] == base + 1  # the very next read
    assert type(writer.overlay.entry(cid, "customer_engagement")) is PendingRow
    _ingest(writer, cid, "message_clicked", channel="email")  # applied to the pending row
    assert source.get(cid).values["clicks_email_30d"] == base + 2
    assert other.get(cid).values["clicks_email_30d"] == base  # not written yet
    writer.flush()
    assert other.get(cid).values["clicks_email_30d"] == base + 2
    assert writer.bulk_reads == []  # the read resolved it; the flush had nothing to read


def test_consent_is_written_through_while_other_events_wait(store, writer) -> None:
    source, other = store
    cid = "c-000127"
    _ingest(writer, cid, "page_view", page="pricing-127")
    for granted in (False, True, False):
        _ingest(writer, cid, "consent_changed", channel="whatsapp", granted=granted)
        assert source.get(cid).values["consent_whatsapp"] is granted
        assert other.get(cid).values["consent_whatsapp"] is granted  # every process, at once
    assert writer.overlay.entry(cid, "customer_consent") is None  # nothing left to write
    assert other.get(cid).values["last_page"] != "pricing-127"  # the page view still waits
    writer.flush()
    assert other.get(cid).values["last_page"] == "pricing-127"
    assert other.get(cid).values["consent_whatsapp"] is False


def test_events_that_undo_each_other_write_nothing(store, writer) -> None:
    source, other = store
    cid = "c-000128"
    was = other.get(cid).values["consent_push"]
    writer.consent_write_through = False
    _ingest(writer, cid, "consent_changed", channel="push", granted=not was)
    _ingest(writer, cid, "consent_changed", channel="push", granted=was)
    assert writer.flush() == 0 and len(source.overlay) == 0
    assert source.get(cid).values["consent_push"] is was


def test_erasure_while_events_are_pending(store, writer) -> None:
    from features.erasure import erase_customer

    source, other = store
    cid = "c-new-erase-1"  # a customer only events create: erasing it leaves the base intact
    _ingest(writer, cid, "page_view", page="a")
    writer.flush()
    assert other.get(cid).known
    _ingest(writer, cid, "page_view", page="b")  # deferred
    _ingest(writer, cid, "invoice_overdue", days_overdue=3)
    assert source.get(cid).values["last_page"] == "b"  # resolved into pending rows
    _ingest(writer, cid, "message_opened", channel="email")  # deferred again
    counts = erase_customer(source, cid, writer)
    assert counts.pending_rows == 3 and counts.online_values >= 5
    assert writer.flush() == 0  # nothing pending can bring the customer back
    assert not source.get(cid).known and not other.get(cid).known


def test_erasure_by_another_process_beats_pending_rows(store, writer) -> None:
    """Another process (its own source, no access to this writer's overlay) erases a
    customer while this writer holds their events — resolved into a pending row on the
    pre-erasure base, or still deferred: the tombstone in the online store stops both
    from being written, and an event accepted after the erasure is written as usual."""
    from features.erasure import erase_customer

    source, other = store
    for cid, resolve in (("c-x-erase-pending", True), ("c-x-erase-deferred", False)):
        _ingest(writer, cid, "page_view", page="a")
        writer.flush()
        assert other.get(cid).known
        _ingest(writer, cid, "complaint_opened")
        if resolve:
            assert source.get(cid).values["open_complaint"] is True  # a pending row now
        dropped = writer.dropped_erased
        erase_customer(other, cid)  # the other process: this writer's overlay is untouched
        assert len(writer.overlay.keys(cid)) == 1
        writer.flush()
        assert writer.dropped_erased == dropped + 1
        assert not other.get(cid).known and not source.get(cid).known, cid
        time.sleep(0.002)  # acceptance strictly after the erasure's clock reading
        _ingest(writer, cid, "page_view", page="after")
        writer.flush()
        assert writer.dropped_erased == dropped + 1
        assert other.get(cid).values["last_page"] == "after"
        assert other.get(cid).values["open_complaint"] is False  # the erased one stays gone
        erase_customer(source, cid, writer)  # the shared workspace keeps its 200 customers


def test_erasure_during_a_bulk_read_drops_the_resolution(store, writer) -> None:
    source, other = store
    cid = "c-new-erase-2"
    _ingest(writer, cid, "page_view", page="x")
    read_many = writer._bulk.read_many

    def erase_midway(keys):
        rows = read_many(keys)
        writer.overlay.erase(cid)  # as erase_customer would, between read and fold
        return rows

    writer._bulk.read_many = erase_midway
    assert writer.flush() == 0
    assert len(source.overlay) == 0 and not other.get(cid).known


def test_events_accepted_during_a_bulk_read_are_folded_too(store, writer) -> None:
    source, other = store
    cid = "c-000129"
    _ingest(writer, cid, "cart_updated", cart_value=10.0)
    read_many = writer._bulk.read_many

    def ingest_midway(keys):
        rows = read_many(keys)
        _ingest(writer, cid, "cart_updated", cart_value=99.0)  # appended to the same entry
        return rows

    writer._bulk.read_many = ingest_midway
    assert writer.flush() == 1
    assert other.get(cid).values["cart_value"] == 99.0 and len(source.overlay) == 0


def test_a_failed_bulk_read_keeps_every_event(store, writer) -> None:
    _source, other = store
    cid = "c-000130"
    base = other.get(cid).values["opens_push_7d"]
    _ingest(writer, cid, "message_opened", channel="push")
    read_many = writer._bulk.read_many

    def down(keys):
        raise FeatureStoreUnavailable("store down")

    writer._bulk.read_many = down
    assert writer.flush() == 0 and writer.failed_flushes == 1
    _ingest(writer, cid, "message_opened", channel="push")  # still deferred, in order
    writer._bulk.read_many = read_many
    assert writer.flush() == 1
    assert other.get(cid).values["opens_push_7d"] == base + 2


def test_feasts_sdk_reads_back_batched_writes(store, writer) -> None:
    source, other = store
    cid = "c-000131"
    _ingest(writer, cid, "page_view", page="sdk")
    _ingest(writer, cid, "invoice_overdue", days_overdue=12)
    _ingest(writer, cid, "message_clicked", channel="push")
    writer.flush()
    feast = source.store
    sdk = feast.get_online_features(
        features=feast.get_feature_service("policy_inputs_v1"), entity_rows=[{"customer_id": cid}]
    ).to_dict()
    ours = other.get(cid).values
    assert {k: sdk[k][0] for k in ours if k in sdk} == {k: v for k, v in ours.items() if k in sdk}
    assert (ours["last_page"], ours["days_overdue"]) == ("sdk", 12)


def test_background_thread_writes_within_its_interval(store) -> None:
    from features.event_writer import EventWriter

    source, other = store
    cid = "c-000132"
    with EventWriter(source, flush_interval=0.01) as w:
        _ingest(w, cid, "page_view", page="bg")
        deadline = time.monotonic() + 5
        while other.get(cid).values["last_page"] != "bg":
            assert time.monotonic() < deadline, "the background flush never wrote the event"
            time.sleep(0.002)
        # the flush counts itself once its write returned: the reader may see the row first
        while w.flushes < 1:
            assert time.monotonic() < deadline, "the write was not the background flush's"
            time.sleep(0.002)


def test_fold_events_is_ordered_and_monotone() -> None:
    events = [
        parse_event(
            {"customer_id": "c", "type": "page_view", "timestamp": 100.0, "properties": {"page": p}}
        )
        for p in ("a", "b", "c")
    ]
    ts, values, changed = fold_events(events, None)
    assert values["last_page"] == "c" and values["session_pages"] == 3
    assert values["rapid_clicks"] == 2  # same second: rapid repeated clicks
    assert changed == frozenset(values)  # no row before: every feature is written
    assert ts == pytest.approx(100.0 + 2 * MIN_STEP)  # each row newer than the previous
    again = fold_events(events[:1], (ts, values))
    assert again is not None and again[0] > ts
    assert "last_page" in again[2] and "cart_value" not in again[2]  # only what changed
    assert fold_events([], (ts, values)) is None


def test_value_encoding_memo_matches_feast() -> None:
    from feast.protos.feast.types.Value_pb2 import Value

    from features.feast.row_io import _decode_proto, encode_value

    cases = [
        ("last_page", str, "home", "string_val"),
        ("open_tickets", int, 3, "int64_val"),
        ("cart_value", float, 12.5, "double_val"),
        ("open_complaint", bool, True, "bool_val"),
        ("open_complaint", bool, False, "bool_val"),
        ("open_tickets", int, 0, "int64_val"),
    ]
    for _ in range(2):  # the second round is served from the memos
        for name, kind, value, oneof in cases:
            blob = encode_value(kind, value)
            assert blob == Value(**{oneof: value}).SerializeToString()
            decoded = _decode_proto(name, blob)
            assert decoded == value and type(decoded) is kind
    assert _decode_proto("open_tickets", Value(string_val="x").SerializeToString()) is None


def test_background_thread_retries_a_down_store_without_losing_events(store) -> None:
    from features.event_writer import EventWriter

    source, other = store
    cid = "c-000133"
    base = other.get(cid).values["clicks_sms_7d"]
    with EventWriter(source, flush_interval=0.01) as w:
        read_many = w._bulk.read_many
        calls: list[int] = []

        def down(keys):
            calls.append(len(keys))
            raise FeatureStoreUnavailable("store down")

        w._bulk.read_many = down
        _ingest(w, cid, "message_clicked", channel="sms")
        deadline = time.monotonic() + 5
        while len(calls) < 3:  # the thread keeps retrying
            assert time.monotonic() < deadline, "the writer stopped retrying"
            time.sleep(0.01)
        assert w.failed_flushes >= 3 and len(source.overlay) == 1
        w._bulk.read_many = read_many  # the store is back
        while other.get(cid).values["clicks_sms_7d"] != base + 1:
            assert time.monotonic() < deadline + 5, "the event was never written"
            time.sleep(0.01)
