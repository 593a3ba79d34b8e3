"""The feature cache against real Feast SQLite: every change written through Maestro —
from this process, another source in it, or another OS process — is seen by the next
read; a direct write to Feast empties the cache; erasure reaches every cache."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from features.cache import RowCache, record_changes

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from features.workspace import init_feature_workspace

    path = tmp_path_factory.mktemp("cache-home")
    init_feature_workspace(path, customers=20, seed=5)
    return path


def _layer(home: Path):
    from features.layer import FeastFeatureLayer

    return FeastFeatureLayer(home, timeout=2.0)


def _consent(cid: str, channel: str, granted: bool) -> dict:
    return {
        "customer_id": cid,
        "type": "consent_changed",
        "properties": {"channel": channel, "granted": granted},
    }


def test_repeated_reads_come_from_the_cache(home: Path) -> None:
    layer = _layer(home)
    try:
        cache = layer.source.backend.cache
        first = layer.get("c-000003")
        hits = cache.hits
        again = layer.get("c-000003")
        assert cache.hits == hits + 1
        assert again.values == first.values and again.known
    finally:
        layer.close()


def test_consent_from_another_source_is_seen_at_the_next_read(home: Path) -> None:
    reader, writer = _layer(home), _layer(home)
    try:
        before = reader.get("c-000004").values["consent_sms"]
        reader.get("c-000004")  # cached now
        writer.ingest(_consent("c-000004", "sms", not before))  # written through
        assert reader.get("c-000004").values["consent_sms"] is (not before)
        writer.ingest(_consent("c-000004", "sms", before))
        assert reader.get("c-000004").values["consent_sms"] is before
        assert reader.source.backend.cache.invalidations >= 2
    finally:
        reader.close()
        writer.close()


def test_a_change_from_another_process_is_seen_at_the_next_read(home: Path) -> None:
    reader = _layer(home)
    try:
        assert reader.get("c-000005").values["session_pages"] == 0
        script = textwrap.dedent(f"""
            from features.layer import FeastFeatureLayer
            layer = FeastFeatureLayer({str(home)!r}, timeout=2.0)
            for page in ("home", "cart", "checkout"):
                layer.ingest({{"customer_id": "c-000005", "type": "page_view",
                               "properties": {{"page": page}}}})
            layer.ingest({{"customer_id": "c-000005", "type": "consent_changed",
                           "properties": {{"channel": "email", "granted": False}}}})
            layer.close()  # flushes the page views
        """)
        subprocess.run(
            [sys.executable, "-c", script],
            check=True,
            timeout=120,
            env={**os.environ, "FEAST_USAGE": "False"},
        )
        after = reader.get("c-000005").values
        assert after["session_pages"] == 3 and after["last_page"] == "checkout"
        assert after["consent_email"] is False
    finally:
        reader.close()


def test_a_direct_write_to_feast_empties_the_cache(home: Path) -> None:
    """A commit without a journal entry (``feast materialize``, another tool) is noticed
    through SQLite's data_version and drops everything cached."""
    reader = _layer(home)
    try:
        reader.get("c-000006")
        cache = reader.source.backend.cache
        assert len(cache) >= 1
        table = next(v.table for v in reader.source.views if v.name == "customer_billing")
        db = reader.source.backend.db_path
        with sqlite3.connect(db) as conn:  # like Feast would: value_text + event_ts
            conn.execute(
                f'UPDATE "{table}" SET value_text = ?, value = NULL '
                "WHERE feature_name = 'days_overdue' AND entity_key = ?",
                ("41", _key("c-000006")),
            )
        assert reader.get("c-000006").values["days_overdue"] == 41
        assert cache.clears >= 2  # the first look, then the direct write
    finally:
        reader.close()


def test_erasure_by_another_source_reaches_this_cache(home: Path) -> None:
    reader, eraser = _layer(home), _layer(home)
    try:
        assert reader.get("c-000007").known
        eraser.erase("c-000007")
        assert reader.get("c-000007").known is False
    finally:
        reader.close()
        eraser.close()


def _key(cid: str) -> bytes:
    from features.feast.row_format import entity_key_bytes

    return entity_key_bytes(cid)


# -- the cache's own rules, on a bare SQLite journal -------------------------------------


def _journal(tmp_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path / "j.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    with conn:
        record_changes(conn, [b"seed"])
    return conn


def test_fill_that_raced_with_an_invalidation_is_dropped(tmp_path: Path) -> None:
    writer = _journal(tmp_path)
    reader = sqlite3.connect(tmp_path / "j.db")
    cache, state = RowCache(), {}
    cache.sync(reader, state)
    generation = cache.generation  # a read of "a" starts here...
    with writer:
        record_changes(writer, [b"a"])  # ...a write of "a" commits meanwhile...
    cache.sync(reader, state)  # ...another request syncs...
    cache.put(b"a", {"old": 1}, generation)  # ...and the old read must not be cached
    assert cache.get(b"a") is None
    cache.put(b"a", {"new": 1}, cache.generation)
    assert cache.get(b"a") == {"new": 1}


def test_entries_expire_after_max_age_and_capacity_evicts_oldest(tmp_path: Path) -> None:
    now = [0.0]
    cache = RowCache(capacity=2, max_age=10.0, clock=lambda: now[0])
    _journal(tmp_path)
    cache.sync(sqlite3.connect(tmp_path / "j.db"), {})
    for key in (b"a", b"b", b"c"):
        cache.put(key, key, cache.generation)
    assert cache.get(b"a") is None and cache.get(b"c") == b"c"
    now[0] = 10.5
    assert cache.get(b"c") is None


def test_a_reader_left_behind_by_pruning_clears_everything(tmp_path: Path) -> None:
    writer = _journal(tmp_path)
    reader = sqlite3.connect(tmp_path / "j.db")
    cache, state = RowCache(), {}
    cache.sync(reader, state)
    cache.put(b"x", 1, cache.generation)
    with writer:
        record_changes(writer, [b"y"])
        writer.execute("DELETE FROM maestro_feature_changes")  # as pruning past us would
        record_changes(writer, [b"z"])
    cache.sync(reader, state)
    assert cache.get(b"x") is None


def test_write_many_commits_every_view_at_once_with_one_journal_entry(home: Path) -> None:
    from features.cache import JOURNAL_TABLE
    from features.feast.sqlite_writer import SqliteRowWriter
    from features.overlay import PendingRow

    reader = _layer(home)
    try:
        source = reader.source
        db = source.backend.db_path
        writer = SqliteRowWriter(db, {v.name: v.table for v in source.views})
        with sqlite3.connect(db) as conn:
            before = conn.execute(f'SELECT max(seq) FROM "{JOURNAL_TABLE}"').fetchone()[0] or 0
        billing = PendingRow(
            2e9,
            {"overdue_invoice": True, "days_overdue": 12},
            changed=frozenset({"overdue_invoice", "days_overdue"}),
        )
        session = PendingRow(2e9, {"cart_value": 42.5}, changed=frozenset({"cart_value"}))
        writer.write_many(
            {
                "customer_billing": [("c-000008", "customer_billing", billing)],
                "customer_session": [("c-000008", "customer_session", session)],
            }
        )
        writer.close()
        values = reader.get("c-000008").values
        assert values["days_overdue"] == 12 and values["overdue_invoice"] is True
        assert values["cart_value"] == 42.5
        with sqlite3.connect(db) as conn:
            entries = conn.execute(
                f'SELECT count(*) FROM "{JOURNAL_TABLE}" WHERE seq > ?', (before,)
            ).fetchone()[0]
        assert entries == 1  # one customer, two views, one transaction
    finally:
        reader.close()


def test_a_store_without_the_journal_gets_it_back_on_the_next_read(home: Path) -> None:
    """A store restored from a copy made before the journal existed: the read recreates
    the journal and keeps serving (it is not an outage)."""
    from features.cache import JOURNAL_TABLE

    reader = _layer(home)
    try:
        assert reader.get("c-000009").known
        db = reader.source.backend.db_path
        with sqlite3.connect(db) as conn:
            conn.execute(f'DROP TABLE "{JOURNAL_TABLE}"')
        assert reader.get("c-000009").known
        with sqlite3.connect(db) as conn:
            assert conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE name = ?", (JOURNAL_TABLE,)
            ).fetchone() == (1,)
    finally:
        reader.close()


def test_the_wal_index_header_skips_the_pragma_only_while_nothing_is_committed(
    home: Path,
) -> None:
    """In WAL mode a read asks ``PRAGMA data_version`` only when the WAL-index header
    changed (a commit): repeated reads skip it, and a commit by another connection —
    consent through another source, a direct write, an erasure — is still seen at the
    very next read."""
    reader, writer = _layer(home), _layer(home)
    backend = reader.source.backend
    try:
        reader.get("c-000006")
        assert backend._local.state["wal"] is not None  # maestro init sets WAL mode
        pragmas: list[str] = []
        backend._conn().set_trace_callback(
            lambda sql: pragmas.append(sql) if "data_version" in sql else None
        )
        for _ in range(20):
            reader.get("c-000006")
        assert pragmas == []  # nothing committed: no pragma
        granted = reader.get("c-000006").values["consent_push"]
        writer.ingest(_consent("c-000006", "push", not granted))  # written through
        assert reader.get("c-000006").values["consent_push"] is (not granted)
        assert len(pragmas) == 1
        writer.ingest(_consent("c-000006", "push", granted))
        assert reader.get("c-000006").values["consent_push"] is granted
        db = home / "feature_repo" / "data" / "online_store.db"
        with sqlite3.connect(db) as direct:  # a commit without a journal entry
            direct.execute("CREATE TABLE IF NOT EXISTS t_wal_probe (x)")
        reader.get("c-000006")
        assert backend.cache.clears >= 1 and len(pragmas) == 3
    finally:
        reader.close()
        writer.close()
        assert getattr(backend._local, "state", {}).get("wal") is None  # closed first
