"""Integration: events pushed through Feast (real SQLite online store), read back by this
process and by a second, independent source (another process's view); erasure."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from features.errors import EventBacklogFull, InvalidEventError
from features.schema import DEFAULTS

pytestmark = [pytest.mark.integration,
              pytest.mark.filterwarnings("ignore:Stream feature views:RuntimeWarning")]


@pytest.fixture
def writer(source):
    from features.event_writer import EventWriter

    w = EventWriter(source, flush_interval=0.05)
    yield w
    w.close()


@pytest.fixture(scope="module")
def other(repo: Path):
    """An independent source on the same store: what another serving process sees."""
    from features.feast.source import FeastFeatureSource

    src = FeastFeatureSource(repo, timeout=2.0)
    yield src
    src.close()


def _eventually(fn, timeout: float = 2.0) -> float:
    """Seconds until ``fn()`` holds (fails after ``timeout``)."""
    started = time.perf_counter()
    while not fn():
        if time.perf_counter() - started > timeout:
            raise AssertionError("condition never held")
        time.sleep(0.005)
    return time.perf_counter() - started


def test_page_view_is_visible_at_once_here_and_soon_elsewhere(writer, source, other) -> None:
    cid = "c-000020"
    writer.ingest({"customer_id": cid, "type": "page_view", "properties": {"page": "checkout"}})
    got = source.get(cid)  # the very next read in this process
    assert got.values["last_page"] == "checkout" and got.values["session_pages"] >= 1
    assert got.known
    waited = _eventually(lambda: other.get(cid).values["last_page"] == "checkout")
    assert waited < 1.0
    writer.flush()
    assert len(source.overlay) == 0  # pushed rows leave the overlay
    assert other.get(cid).values["last_page"] == "checkout"


def test_consent_revocation_holds_from_the_very_next_read(writer, source, other) -> None:
    cid = "c-000021"
    for granted in (True, False):
        writer.ingest({"customer_id": cid, "type": "consent_changed",
                       "properties": {"channel": "sms", "granted": granted}})
        assert source.get(cid).values["consent_sms"] is granted
        assert other.get(cid).values["consent_sms"] is granted  # write-through: every process
    assert source.get(cid).values["consent_email"] == other.get(cid).values["consent_email"]


def test_every_event_type_round_trips_through_feast(writer, source, other) -> None:
    cid = "c-000022"
    before = source.get(cid).values
    events = [
        ("cart_updated", {"cart_value": 55.5}),
        ("message_opened", {"channel": "email"}),
        ("message_clicked", {"channel": "email"}),
        ("complaint_opened", {}),
        ("invoice_overdue", {"days_overdue": 17}),
        ("page_view", {"page": "help"}),
    ]
    for kind, props in events:
        writer.ingest({"customer_id": cid, "type": kind, "properties": props})
    writer.flush()
    after = other.get(cid).values  # from the store, not the overlay
    assert after["cart_value"] == 55.5 and after["last_page"] == "help"
    assert after["opens_email_7d"] == before["opens_email_7d"] + 1
    assert after["clicks_email_30d"] == before["clicks_email_30d"] + 1
    assert after["open_complaint"] is True
    assert after["open_tickets"] == before["open_tickets"] + 1
    assert (after["overdue_invoice"], after["days_overdue"]) == (True, 17)
    assert after["segment"] == before["segment"]  # batch profile untouched
    for kind, props in [("purchase", {}), ("complaint_closed", {"csat": 5}), ("invoice_paid", {})]:
        writer.ingest({"customer_id": cid, "type": kind, "properties": props})
    writer.flush()
    after = other.get(cid).values
    assert (after["cart_value"], after["open_complaint"], after["last_csat"]) == (0.0, False, 5.0)
    assert (after["overdue_invoice"], after["days_overdue"]) == (False, 0)
    store = source.store  # Feast's own SDK reads the written rows back unchanged
    sdk = store.get_online_features(features=store.get_feature_service("policy_inputs_v1"),
                                    entity_rows=[{"customer_id": cid}]).to_dict()
    assert {k: sdk[k][0] for k in after} == dict(after)


def test_unknown_customer_event_and_stale_session(writer, source) -> None:
    cid = "c-new-000001"
    old = time.time() - 2 * 3600  # two hours ago: past the 30-minute session TTL
    writer.ingest({"customer_id": cid, "type": "page_view", "properties": {"page": "home"},
                   "timestamp": old})
    writer.flush()
    got = source.get(cid)
    assert got.known and got.values["last_page"] == "home"
    assert got.values["segment"] == DEFAULTS["segment"]  # no profile row: defaults
    assert {"last_page", "session_pages"} <= got.stale
    writer.ingest({"customer_id": cid, "type": "page_view", "properties": {"page": "cart"}})
    writer.flush()
    fresh = source.get(cid)
    assert not fresh.stale and fresh.values["session_pages"] == 1  # a new session began


def test_malformed_event_changes_nothing(writer, source) -> None:
    cid = "c-000023"
    before = source.get(cid)
    with pytest.raises(InvalidEventError) as info:
        writer.ingest({"customer_id": cid, "type": "consent_changed",
                       "properties": {"channel": "sms", "granted": "nope"}})
    assert info.value.field == "properties.granted"
    assert source.get(cid) == before and len(source.overlay) == 0


def test_full_backlog_refuses_with_503(repo: Path) -> None:
    from features.event_writer import EventWriter
    from features.feast.source import FeastFeatureSource

    src = FeastFeatureSource(repo, timeout=2.0)
    w = EventWriter(src, max_pending=2, block_timeout=0.05, start=False)
    for i in range(2):
        w.ingest({"customer_id": f"c-00003{i}", "type": "page_view", "properties": {"page": "a"}})
    with pytest.raises(EventBacklogFull) as info:
        w.ingest({"customer_id": "c-000039", "type": "page_view", "properties": {"page": "a"}})
    assert info.value.http_status == 503
    assert w.flush() == 2 and len(src.overlay) == 0
    w.ingest({"customer_id": "c-000039", "type": "page_view", "properties": {"page": "a"}})
    w.close()
    src.close()


def test_erasure_removes_online_and_offline_rows(repo: Path, tmp_path: Path) -> None:
    import shutil

    from features.erasure import erase_customer
    from features.event_writer import EventWriter
    from features.feast.source import FeastFeatureSource

    home = tmp_path / "home"
    shutil.copytree(repo, home / "feature_repo")  # read/write only: never re-applied
    source = FeastFeatureSource(home / "feature_repo", timeout=2.0)
    other = FeastFeatureSource(home / "feature_repo", timeout=2.0)
    cid = "c-000040"
    assert source.get(cid).known and source.get("c-000041").known
    w = EventWriter(source, start=False)
    w.ingest({"customer_id": cid, "type": "page_view", "properties": {"page": "a"}})
    counts = erase_customer(source, cid, w)
    assert counts.online_values >= 65 and counts.offline_rows == 1 and counts.pending_rows == 1
    assert not source.get(cid).known and not other.get(cid).known
    assert source.get("c-000041").known  # only that customer
    assert w.flush() == 0  # nothing pending can bring the customer back
    frame = pd.read_parquet(home / "feature_repo" / "data" / "customers.parquet")
    assert cid not in set(frame["customer_id"]) and len(frame) == 199
    again = erase_customer(source, cid, w)
    assert (again.online_values, again.offline_rows, again.pending_rows) == (0, 0, 0)
    w.close()
    source.close()
    other.close()


def test_concurrent_ingestion_keeps_every_write_and_the_last_consent(source, other) -> None:
    import threading

    from features.event_writer import EventWriter

    writer = EventWriter(source, flush_interval=0.01)
    customers = [f"c-000{160 + i}" for i in range(20)]  # ids no other test uses
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            for n in range(150):
                cid = customers[(seed * 7 + n) % len(customers)]
                writer.ingest({"customer_id": cid, "type": "page_view",
                               "properties": {"page": f"p{seed}-{n}"}})
                if n % 10 == 0:
                    writer.ingest({"customer_id": customers[seed], "type": "consent_changed",
                                   "properties": {"channel": "push", "granted": n % 20 == 0}})
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    assert not errors and writer.failed_flushes == 0
    assert len(source.overlay) == 0
    for seed in range(4):  # the last consent event of each thread (n = 140: granted)
        assert other.get(customers[seed]).values["consent_push"] is True
    pages = {other.get(cid).values["last_page"] for cid in customers}
    assert all(p.startswith("p") for p in pages)
