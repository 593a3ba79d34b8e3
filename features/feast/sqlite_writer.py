"""Batched writes of event rows into Feast's SQLite online tables.

Feast's ``SqliteOnlineStore.online_write_batch`` issues one ``execute`` per feature value
through one connection shared by every thread; each call releases and re-takes the GIL,
so with request threads busy a batch takes several times as long as on an idle process
(BENCHMARKS.md, "Feature store: notes"). This writer produces byte-for-byte the rows
Feast writes (same columns, Feast's ``ValueProto`` bytes and ``value_text``, entity keys
serialised as Feast does, ``event_ts`` through the datetime adapter Feast registers) with
one multi-row ``INSERT … ON CONFLICT DO UPDATE`` per batch (one statement step, so the GIL is
released once, not per value) on its own connection, so Feast's SDK reads them back
unchanged (a test checks it). It is used only for the plain SQLite configuration
(no vector or OpenAI-compatible columns); any other online store goes through Feast's
provider.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from features.cache import ensure_journal, record_changes
from features.feast.row_format import entity_key_bytes
from features.overlay import PendingRow
from features.schema import GROUPS
from features.tombstones import erased_sqlite, survivors

_ONEOF = {str: "string_val", int: "int64_val", float: "double_val", bool: "bool_val"}
#: Value rows per INSERT: one statement is one step (one GIL release), 6 parameters a row.
_ROWS_PER_STATEMENT = 2000


def _upsert(table: str, n: int) -> str:
    return (
        f'INSERT INTO "{table}" '
        "(entity_key, feature_name, value, value_text, event_ts, created_ts) VALUES "
        + ", ".join(["(?, ?, ?, ?, ?, ?)"] * n)
        + " ON CONFLICT(entity_key, feature_name) DO UPDATE SET value = excluded.value, "
        "value_text = excluded.value_text, event_ts = excluded.event_ts, "
        "created_ts = excluded.created_ts"
    )


def supports(online_store_config: object) -> bool:
    """True for a plain SQLite online store (the columns this writer fills are all)."""
    return (
        getattr(online_store_config, "type", None) == "sqlite"
        and not getattr(online_store_config, "vector_enabled", False)
        and not getattr(online_store_config, "enable_openai_compatible_store", False)
    )


class SqliteRowWriter:
    """Upserts ``(customer, view row)`` batches into Feast's tables, one transaction each."""

    def __init__(self, db_path: Path, tables: dict[str, str]) -> None:
        # Feast's module registers the sqlite3 datetime adapters its rows are written with.
        import feast.infra.online_stores.sqlite  # noqa: F401

        self.conn = sqlite3.connect(db_path, timeout=5.0, check_same_thread=False)
        self.conn.execute("PRAGMA synchronous=NORMAL")  # WAL: consistent without fsync
        with self.conn:
            ensure_journal(self.conn)
        self._tables = dict(tables)

    def write(self, view: str, items: Iterable[tuple[str, str, PendingRow]]) -> int:
        """Write each row's changed features (one transaction); see :meth:`write_many`."""
        return self.write_many({view: items})

    def write_many(self, batches: Mapping[str, Iterable[tuple[str, str, PendingRow]]]) -> int:
        """Write the rows of several views in one transaction (one commit, one WAL sync
        point and one journal entry per customer, however many views they touched).
        Rows of a customer erased since their data was accepted are not written
        (:mod:`features.tombstones`, checked inside the same transaction); returns how
        many were dropped so."""
        from feast.infra.online_stores.helpers import extract_text_and_num
        from feast.protos.feast.types.Value_pb2 import Value

        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")  # the tombstones read stay true till commit
            batches = {view: list(items) for view, items in batches.items()}
            erased = erased_sqlite(
                self.conn,
                [entity_key_bytes(cid) for items in batches.values() for cid, _, _ in items],
            )
            dropped = 0
            statements: list[tuple[str, list[tuple]]] = []
            keys: list[bytes] = []
            for view, items in batches.items():
                items, gone = survivors(items, erased)
                dropped += gone
                types = GROUPS[view]
                rows = []
                for cid, _, row in items:
                    key = entity_key_bytes(cid)
                    keys.append(key)
                    ts = datetime.fromtimestamp(row.ts, tz=UTC).replace(tzinfo=None)  # naive UTC
                    for name in row.changed:
                        proto = Value(**{_ONEOF[types[name]]: row.values[name]})
                        text, _ = extract_text_and_num(proto, False)
                        rows.append((key, name, proto.SerializeToString(), text, ts, None))
                statements.append((self._tables[view], rows))
            for table, rows in statements:
                for start in range(0, len(rows), _ROWS_PER_STATEMENT):
                    chunk = rows[start : start + _ROWS_PER_STATEMENT]
                    self.conn.execute(_upsert(table, len(chunk)), [v for row in chunk for v in row])
            # same transaction: a reader that sees these rows sees their journal entry
            record_changes(self.conn, keys)
        return dropped

    def close(self) -> None:
        self.conn.close()
