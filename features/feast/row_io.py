"""Bulk reads of the event views' current rows, and Redis writes in Feast's format, for
the event writer's flushes.

The event writer folds a batch of deferred events on their views' current rows
(:mod:`features.overlay`), so it reads many ``(customer, view)`` rows at once: from Redis
with one pipeline of ``HMGET``s (one round trip for the batch), from SQLite with one
``SELECT … WHERE entity_key IN (…)`` per view (one statement step, so the GIL is
released once, not per row). Rows are decoded as :mod:`features.feast.row_format` decodes
them: Feast's ``ValueProto`` (Redis; SQLite where ``value_text`` is NULL), ``value_text``
by the schema's type (SQLite), the view's ``_ts`` field (a protobuf ``Timestamp``) or
``event_ts`` column as the row's time.

:class:`RedisRows` also writes rows exactly as Feast's ``RedisOnlineStore.
online_write_batch`` does (hash key = serialised entity key + project; fields
``murmur3("<view>:<feature>")`` → ``ValueProto`` bytes and ``_ts:<view>`` → ``Timestamp``
bytes; ``EXPIRE`` when ``key_ttl_seconds`` is set), all views of a flush in one pipeline
(one round trip) instead of Feast's two round trips per view; Feast's SDK reads them back
unchanged (a test checks it). Feast's check that a row is newer than the stored one is
not repeated: the writer's rows are always newer than the base they were folded on.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from features.errors import FeatureStoreUnavailable
from features.feast.row_format import entity_key_bytes, sqlite_ts
from features.schema import ALL_FEATURES, GROUPS
from features.source import FeatureValue
from features.tombstones import REDIS_PREFIX, erased_redis, survivors

if TYPE_CHECKING:
    from features.feast.redis_backend import RedisBackend
    from features.overlay import PendingRow

Key = tuple[str, str]  # (customer_id, view)
Row = tuple[float, dict[str, FeatureValue]]
_ONEOF = {str: "string_val", int: "int64_val", float: "double_val", bool: "bool_val"}
_FROM_TEXT = {str: str, int: int, float: float, bool: lambda s: s == "True"}
#: Entity keys per ``IN (…)`` (SQLite's default limit is 32,766 parameters).
_IN_CHUNK = 500


#: Memos of ``ValueProto`` bytes ↔ values: most feature values repeat (counters, flags,
#: channels), and a dict look-up costs a tenth of a protobuf parse. Emptied when full.
_MEMO_SIZE = 50_000
_DECODED: dict[tuple[str, bytes], FeatureValue] = {}
_ENCODED: dict[tuple[str, FeatureValue], bytes] = {}
_MISSING = object()


def _decode_proto(name: str, blob: bytes) -> FeatureValue:
    oneof = _ONEOF[ALL_FEATURES[name]]
    value = _DECODED.get((oneof, blob), _MISSING)
    if value is _MISSING:
        from feast.protos.feast.types.Value_pb2 import Value

        proto = Value()
        proto.ParseFromString(blob)
        value = getattr(proto, oneof) if proto.WhichOneof("val") == oneof else None
        if len(_DECODED) >= _MEMO_SIZE:
            _DECODED.clear()
        _DECODED[(oneof, blob)] = value
    return value  # type: ignore[return-value]


def encode_value(kind: type, value: FeatureValue) -> bytes:
    """Feast's ``ValueProto`` bytes of a feature value of schema type ``kind``."""
    oneof = _ONEOF[kind]
    blob = _ENCODED.get((oneof, value))
    if blob is None:
        from feast.protos.feast.types.Value_pb2 import Value

        blob = Value(**{oneof: value}).SerializeToString()
        if len(_ENCODED) >= _MEMO_SIZE:
            _ENCODED.clear()
        _ENCODED[(oneof, value)] = blob
    return blob


#: ``WATCH``/``EXEC`` rounds before a write gives up (and is retried by the next flush)
_WATCH_ATTEMPTS = 10


class SqliteRows:
    """Reads many view rows from Feast's SQLite online tables (its own connection; use
    from one thread at a time)."""

    def __init__(self, db_path: Path, tables: dict[str, str], timeout: float = 5.0) -> None:
        self.db_path = db_path
        self.timeout = timeout
        self._tables = dict(tables)
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self._conn = sqlite3.connect(
                    f"file:{self.db_path}?mode=ro",
                    uri=True,
                    timeout=self.timeout,
                    check_same_thread=False,
                )
            except sqlite3.Error as exc:
                raise FeatureStoreUnavailable(f"cannot open online store: {exc}") from exc
        return self._conn

    def read_many(self, keys: Sequence[Key]) -> dict[Key, Row]:
        """The current rows of ``keys`` that exist (a missing key: no row): one statement
        (a ``UNION ALL`` of one ``IN (…)`` per view) per 500 keys."""
        out: dict[Key, Row] = {}
        conn = self._connection()
        for start in range(0, len(keys), _IN_CHUNK):
            views = list(self._tables)
            by_view: dict[str, dict[bytes, str]] = defaultdict(dict)
            for cid, view in keys[start : start + _IN_CHUNK]:
                by_view[view][entity_key_bytes(cid)] = cid
            selects, params = [], []
            for view, ids in by_view.items():
                selects.append(
                    f"SELECT {views.index(view)}, entity_key, feature_name, value_text, "
                    "CASE WHEN value_text IS NULL THEN value END, event_ts "
                    f'FROM "{self._tables[view]}" WHERE entity_key IN '
                    f"({', '.join('?' * len(ids))})"
                )
                params.extend(ids)
            try:
                rows = conn.execute(" UNION ALL ".join(selects), params).fetchall()
            except sqlite3.Error as exc:
                self.close()
                raise FeatureStoreUnavailable(f"online store unreadable: {exc}") from exc
            self._decode(views, by_view, rows, out)
        return out

    @staticmethod
    def _decode(
        views: list[str],
        by_view: dict[str, dict[bytes, str]],
        rows: list[Any],
        out: dict[Key, Row],
    ) -> None:
        newest: dict[Key, Any] = {}
        for idx, key, name, text, blob, ts in rows:
            view = views[idx]
            k = (by_view[view][bytes(key)], view)
            if k not in newest or ts > newest[k]:  # a view's age is its latest write
                newest[k] = ts
                values = out.setdefault(k, (0.0, {}))[1]
            else:
                values = out[k][1]
            kind = GROUPS[view].get(name)
            if kind is None:
                continue
            if text is not None:
                values[name] = _FROM_TEXT[kind](text)
            elif blob is not None and (decoded := _decode_proto(name, blob)) is not None:
                values[name] = decoded
        for k, ts in newest.items():
            out[k] = (sqlite_ts(ts), out[k][1])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class RedisRows:
    """Reads many view rows from, and writes rows to, Feast's Redis hashes; its own client
    on the backend's server, with a longer socket timeout than reads (a batch under load)."""

    def __init__(
        self, backend: RedisBackend, key_ttl_seconds: int | None = None, timeout: float = 2.0
    ) -> None:
        import redis
        from feast.infra.online_stores.helpers import _mmh3

        kwargs = dict(backend.client.connection_pool.connection_kwargs)
        kwargs.update(socket_timeout=timeout, socket_connect_timeout=timeout)
        pool = redis.ConnectionPool(
            connection_class=backend.client.connection_pool.connection_class, **kwargs
        )
        self.client = redis.Redis(connection_pool=pool)
        self._redis_key = backend.redis_key
        self.key_ttl_seconds = key_ttl_seconds
        self._field = {
            (view, name): _mmh3(f"{view}:{name}")
            for view, features in GROUPS.items()
            for name in features
        }
        self._read_fields = {
            view: [self._field[(view, name)] for name in features] + [f"_ts:{view}".encode()]
            for view, features in GROUPS.items()
        }

    def read_many(self, keys: Sequence[Key]) -> dict[Key, Row]:
        """The current rows of ``keys`` that exist, in one round trip (an ``HMGET`` of the
        view's fields per key; measured cheaper here than one ``HGETALL`` per customer)."""
        import redis
        from google.protobuf.timestamp_pb2 import Timestamp

        try:
            with self.client.pipeline(transaction=False) as pipe:
                for cid, view in keys:
                    pipe.hmget(self._redis_key(entity_key_bytes(cid)), self._read_fields[view])
                replies = pipe.execute()
        except redis.RedisError as exc:
            raise FeatureStoreUnavailable(f"redis online store unreachable: {exc}") from exc
        out: dict[Key, Row] = {}
        for (cid, view), raw in zip(keys, replies, strict=True):
            if raw[-1] is None:  # no _ts field: the view has no row
                continue
            ts = Timestamp()
            ts.ParseFromString(raw[-1])
            values: dict[str, FeatureValue] = {}
            for name, blob in zip(GROUPS[view], raw, strict=False):
                if blob is not None and (decoded := _decode_proto(name, blob)) is not None:
                    values[name] = decoded
            out[(cid, view)] = (ts.seconds + ts.nanos / 1e9, values)
        return out

    def write(self, items: Sequence[tuple[str, str, PendingRow]]) -> int:
        """Write each row's changed features and time, all in one transaction, unless the
        customer was erased since the row's data was accepted (the tombstones are
        ``WATCH``ed, so an erasure landing in between makes ``EXEC`` fail and the batch
        is checked again: :mod:`features.tombstones`). Returns how many rows were dropped."""
        import redis
        from google.protobuf.timestamp_pb2 import Timestamp

        def hash_key(cid: str) -> bytes:
            return self._redis_key(entity_key_bytes(cid))

        keys = [hash_key(cid) for cid, _, _ in items]
        tombstones = [REDIS_PREFIX + k for k in dict.fromkeys(keys)]
        try:
            with self.client.pipeline(transaction=True) as pipe:
                for _attempt in range(_WATCH_ATTEMPTS):
                    try:
                        pipe.watch(*tombstones)
                        kept, dropped = survivors(items, erased_redis(pipe, keys), hash_key)
                        pipe.multi()
                        for cid, view, row in kept:
                            key = hash_key(cid)
                            seconds, micros = divmod(round(row.ts * 1_000_000), 1_000_000)
                            ts = Timestamp(seconds=seconds, nanos=micros * 1000)  # as FromDatetime
                            types = GROUPS[view]
                            mapping: dict[bytes, bytes] = {
                                self._field[(view, name)]: encode_value(
                                    types[name], row.values[name]
                                )
                                for name in row.changed
                            }
                            mapping[f"_ts:{view}".encode()] = ts.SerializeToString()
                            pipe.hset(key, mapping=mapping)
                            if self.key_ttl_seconds:
                                pipe.expire(key, self.key_ttl_seconds)
                        pipe.execute()
                        return dropped
                    except redis.WatchError:
                        continue  # an erasure landed meanwhile: check again
        except redis.RedisError as exc:
            raise FeatureStoreUnavailable(f"redis online store unreachable: {exc}") from exc
        raise FeatureStoreUnavailable("erasures kept racing this write; it is retried later")

    def close(self) -> None:
        self.client.close()
