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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from features.cache import ensure_journal, record_changes
from features.feast.row_format import entity_key_bytes
from features.feast.sqlite_writer import supports

_ONEOF = {str: "string_val", int: "int64_val", float: "double_val", bool: "bool_val"}
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


def _protos(types: Mapping[str, type], chunk: ViewChunk) -> Iterator[tuple[str, list[Any]]]:
    """Each feature's ``ValueProto`` per row, typed as the schema declares (a null value
    is an empty proto, as Feast writes it), one feature at a time (bounded memory)."""
    from feast.protos.feast.types.Value_pb2 import Value

    for name, values in chunk.columns.items():
        oneof = _ONEOF[types[name]]
        yield name, [Value() if v is None else Value(**{oneof: v}) for v in values]


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
        """One transaction: every value of the chunk, then the journal entries."""
        from feast.infra.online_stores.helpers import extract_text_and_num

        keys = [entity_key_bytes(c) for c in chunk.customers]
        event = [_naive_utc(t) for t in chunk.event_ts]
        created = [_naive_utc(t) for t in chunk.created_ts]
        table = self._tables[view]
        with self.conn:
            for name, protos in _protos(types, chunk):
                rows = []
                for key, proto, ts, cts in zip(keys, protos, event, created, strict=True):
                    text, _ = extract_text_and_num(proto, False)
                    rows.append((key, name, proto.SerializeToString(), text, ts, cts))
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
        blobs = {name: [p.SerializeToString() for p in ps] for name, ps in _protos(types, chunk)}
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
