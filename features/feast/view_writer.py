"""Bulk writes of a declared view's rows into Feast's online store, in Feast's row format.

Feast's ``write_to_online_store`` turns a frame into one ``ValueProto`` per value through
its generic type dispatch and then, on SQLite, issues one ``execute`` per value; for a
table of many customers × many features that dominates ``maestro materialize``
(BENCHMARKS.md, "Declared sources at scale"). These writers take one chunk of a view's
rows as columns and write exactly what Feast's provider writes for it:

- SQLite: the rows of :meth:`SqliteOnlineStore.online_write_batch` (``ValueProto`` bytes,
  ``value_text``, naive-UTC ``event_ts`` and ``created_ts`` through the datetime adapter
  Feast registers), upserted unconditionally as Feast does, with multi-row statements on
  one transaction per chunk; the customers are journalled in the same transaction
  (:mod:`features.cache`), so readers drop exactly those rows from their caches;
- Redis: Feast's hash layout (``murmur3("<view>:<feature>")`` fields, ``_ts:<view>``), with
  Feast's rule that a row no newer than the stored one is skipped: one pipelined ``HMGET``
  of the stored times per chunk, then one pipelined ``HSET`` (and ``EXPIRE`` when the
  store sets a key TTL).

:func:`bulk_view_writer` picks the writer for a store, or None for an online store these
writers do not know (the caller then goes through Feast). A test reads rows written both
ways back through Feast's ``get_online_features``.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from features.cache import ensure_journal, record_changes
from features.feast.row_format import entity_key_bytes
from features.feast.sqlite_writer import supports

#: Value rows per INSERT statement (6 parameters a row, under SQLite's variable limit).
_ROWS_PER_STATEMENT = 2000
#: Socket timeout of the Redis writer's pipelines (seconds): a chunk is one round trip.
_REDIS_TIMEOUT = 60.0
_UPSERT_TAIL = (
    " ON CONFLICT(entity_key, feature_name) DO UPDATE SET value = excluded.value, "
    "value_text = excluded.value_text, event_ts = excluded.event_ts, "
    "created_ts = excluded.created_ts"
)


@dataclass(frozen=True)
class ViewChunk:
    """Rows of one view to write, as columns: ``customers``, ``event_ts`` and
    ``created_ts`` (tz-aware UTC) of shape (n_rows,), and each feature's values
    (shape (n_rows,)) in ``columns``."""

    customers: Sequence[str]
    event_ts: Sequence[datetime]
    created_ts: Sequence[datetime]
    columns: Mapping[str, Sequence[Any]]


class ViewWriter(Protocol):
    """Writes chunks of one view's rows to an online store."""

    def write(self, view: str, types: Mapping[str, type], chunk: ViewChunk) -> None: ...

    def close(self) -> None: ...


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _int_blob(v: int) -> bytes:
    return b"\x20" + _varint(v & 0xFFFFFFFFFFFFFFFF)  # int64_val = 4, two's complement


def _str_blob(v: str) -> bytes:
    raw = v.encode()
    return b"\x12" + _varint(len(raw)) + raw  # string_val = 2, length-delimited


_DOUBLE = struct.Struct("<Bd").pack  # double_val = 5, fixed 64-bit
_BLOB: dict[type, Callable[[Any], bytes]] = {
    float: lambda v: _DOUBLE(0x29, v),
    int: _int_blob,
    bool: lambda v: b"\x38\x01" if v else b"\x38\x00",  # bool_val = 7
    str: _str_blob,
}


def encode_values(typ: type, values: Sequence[Any]) -> tuple[list[bytes], list[str | None]]:
    """Feast's ``ValueProto`` bytes and SQLite ``value_text`` of each value of one feature
    of type ``typ`` (shape (n_rows,) each): the proto wire format of the one oneof field
    set (a null value: the empty proto, no text), and the text Feast's
    ``extract_text_and_num`` gives. Equal to building each proto (a test checks it) at
    a fraction of the cost."""
    blob = _BLOB[typ]
    blobs = [b"" if v is None else blob(v) for v in values]
    texts = [None if v is None else (v if typ is str else str(v)) for v in values]
    return blobs, texts


def _naive_utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None)


class SqliteViewWriter:
    """Upserts view chunks into Feast's SQLite tables (``tables``: view → table)."""

    def __init__(self, db_path: Path, tables: Mapping[str, str]) -> None:
        # Feast's module registers the sqlite3 datetime adapters its rows are written with.
        import feast.infra.online_stores.sqlite  # noqa: F401

        self.conn = sqlite3.connect(db_path, timeout=30.0)
        self.conn.execute("PRAGMA synchronous=NORMAL")
        with self.conn:
            ensure_journal(self.conn)
        self._tables = dict(tables)

    def write(self, view: str, types: Mapping[str, type], chunk: ViewChunk) -> None:
        """One transaction: every value of the chunk, then the journal entries. The
        timestamps go through the adapter Feast registers, once per row, not per value."""
        keys = [entity_key_bytes(c) for c in chunk.customers]
        adapt = sqlite3.adapters.get((datetime, sqlite3.PrepareProtocol), lambda t: t)
        event = [adapt(_naive_utc(t)) for t in chunk.event_ts]
        created = [adapt(_naive_utc(t)) for t in chunk.created_ts]
        table = self._tables[view]
        with self.conn:
            for name, values in chunk.columns.items():
                blobs, texts = encode_values(types[name], values)
                rows = list(
                    zip(keys, [name] * len(keys), blobs, texts, event, created, strict=True)
                )
                self._upsert(table, rows)
            record_changes(self.conn, keys)

    def _upsert(self, table: str, rows: list[tuple]) -> None:
        for start in range(0, len(rows), _ROWS_PER_STATEMENT):
            part = rows[start : start + _ROWS_PER_STATEMENT]
            sql = (
                f'INSERT INTO "{table}" '
                "(entity_key, feature_name, value, value_text, event_ts, created_ts) VALUES "
                + ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(part))
                + _UPSERT_TAIL
            )
            self.conn.execute(sql, [v for row in part for v in row])

    def close(self) -> None:
        self.conn.close()


class RedisViewWriter:
    """Writes view chunks into Feast's Redis hashes, skipping rows no newer than stored."""

    def __init__(self, client: Any, project: str, key_ttl_seconds: int | None) -> None:
        self.client = client
        self._project = project.encode()
        self._ttl = key_ttl_seconds

    def write(self, view: str, types: Mapping[str, type], chunk: ViewChunk) -> None:
        """Two pipelined round trips: the stored ``_ts:<view>`` of every row, then the
        ``HSET`` of each row newer than both the stored one and an earlier row of the
        chunk (Feast's staleness rule, to the nanosecond)."""
        from feast.infra.online_stores.helpers import _mmh3
        from google.protobuf.timestamp_pb2 import Timestamp

        ts_field = f"_ts:{view}".encode()
        fields = {name: _mmh3(f"{view}:{name}") for name in chunk.columns}
        keys = [entity_key_bytes(c) + self._project for c in chunk.customers]
        with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(key, ts_field)
            stored = [r[0] for r in pipe.execute()]
        blobs = {name: encode_values(types[name], v)[0] for name, v in chunk.columns.items()}
        latest: dict[bytes, int] = {}
        with self.client.pipeline(transaction=False) as pipe:
            for i, (key, prev, event) in enumerate(zip(keys, stored, chunk.event_ts, strict=True)):
                ts = Timestamp()
                ts.FromDatetime(event.astimezone(UTC))
                nanos = ts.seconds * 1_000_000_000 + ts.nanos
                seen = latest.get(key, 0)
                if prev:
                    old = Timestamp()
                    old.ParseFromString(prev)
                    seen = max(seen, old.seconds * 1_000_000_000 + old.nanos)
                if seen and nanos <= seen:
                    continue
                latest[key] = nanos
                mapping = {ts_field: ts.SerializeToString()}
                for name, column in blobs.items():
                    mapping[fields[name]] = column[i]
                pipe.hset(key, mapping=mapping)
                if self._ttl:
                    pipe.expire(name=key, time=self._ttl)
            pipe.execute()

    def close(self) -> None:
        self.client.close()


def bulk_view_writer(store: Any) -> ViewWriter | None:
    """The bulk writer for ``store``'s online store (plain SQLite or single-node Redis,
    without feature-view versioning), or None: then Feast's own path must write."""
    from feast.infra.online_stores.helpers import compute_table_id

    from features.feast.redis_backend import redis_client
    from features.feast.views import all_views

    config = store.config
    if getattr(config.registry, "enable_online_feature_view_versioning", False):
        return None
    online = config.online_store
    if supports(online):
        db = Path(online.path)
        db = db if db.is_absolute() else Path(store.repo_path) / db
        tables = {v.name: compute_table_id(config.project, v) for v in all_views(store)}
        return SqliteViewWriter(db, tables)
    plain_redis = getattr(online, "type", None) == "redis" and online.redis_type == "redis"
    if plain_redis and not getattr(online, "skip_dedup", False):
        client = redis_client(online.connection_string, _REDIS_TIMEOUT)
        return RedisViewWriter(client, config.project, online.key_ttl_seconds)
    return None
