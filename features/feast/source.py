"""The Feast-backed :class:`~features.source.FeatureSource` of the decision path.

Feast's SDK ``get_online_features`` spends most of a read of one customer's features in
request planning repeated on every call (its cost against this source's: BENCHMARKS.md,
"Feature store"). This source does that planning
once: on open it resolves the feature service ``policy_inputs_v1`` from Feast's
registry (views, feature names, TTLs) and then reads Feast's own online tables with one
prepared statement (SQLite: one ``UNION ALL`` over the view tables, keyed by Feast's
serialised entity key, decoding Feast's ``value_text`` column by the schema's type) or
one ``HMGET`` (Redis: Feast keeps all views of an entity in one hash, fields
``murmur3("<view>:<feature>")`` and ``_ts:<view>``, decoding Feast's ``ValueProto``).
SQLite rows are kept in a :class:`~features.cache.RowCache` that every read first
brings up to date from SQLite's ``data_version`` and Maestro's change journal, so a read
returns the store's current state (see :mod:`features.cache` for the exact bound);
Redis is read every time. On top comes the in-process
:class:`~features.overlay.Overlay` of events accepted but not yet written (so an event
is visible to the very next read in this process; staleness bound: 0).

Bounded waits: SQLite's busy timeout and Redis's socket timeouts are ``timeout``
seconds (default 100 ms); past them, or when the store is missing or refuses
connections, :class:`~features.errors.FeatureStoreUnavailable` is raised.
"""

from __future__ import annotations

import os
import sqlite3
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from features.cache import RowCache, WalWatch, create_journal
from features.errors import FeatureStoreUnavailable, WorkspaceError
from features.overlay import Overlay
from features.schema import ALL_FEATURES, DEFAULTS, GROUPS
from features.source import CustomerFeatures, FeatureValue

if TYPE_CHECKING:
    from feast import FeatureStore

FEATURE_SERVICE = "policy_inputs_v1"
_ONEOF = {str: "string_val", int: "int64_val", float: "double_val", bool: "bool_val"}


@dataclass(frozen=True)
class ViewSpec:
    """One feature view as resolved from the registry: its online table and TTL."""

    name: str
    features: tuple[str, ...]
    ttl_seconds: float  # 0: never stale
    table: str


def silence_feast_warnings() -> None:
    """Feast warns on every stream feature view it builds (they are "alpha"); ours is a
    plain push-fed view, so that warning is noise on every registry load."""
    import warnings

    warnings.filterwarnings(
        "ignore", message="Stream feature views are experimental", category=RuntimeWarning
    )


def all_views(store: FeatureStore) -> list[Any]:
    """Maestro's customer views (feature and stream feature views) from the registry."""
    views = store.list_feature_views() + store.list_stream_feature_views()
    return [v for v in views if v.name in GROUPS]


def resolve_views(store: FeatureStore, service: str = FEATURE_SERVICE) -> list[ViewSpec]:
    """Resolve the feature service's views, features and TTLs once, from the registry."""
    from feast.infra.online_stores.helpers import compute_table_id

    by_name = {v.name: v for v in all_views(store)}
    specs = []
    for projection in store.get_feature_service(service).feature_view_projections:
        view = by_name[projection.name]
        ttl = view.ttl.total_seconds() if view.ttl else 0.0
        specs.append(
            ViewSpec(
                name=view.name,
                features=tuple(f.name for f in projection.features),
                ttl_seconds=ttl,
                table=compute_table_id(store.config.project, view),
            )
        )
    return specs


_JOIN_KEY = b"customer_id"
#: Feast's entity key serialisation v3 for one string join key: number of keys, then
#: (STRING=2, length, name) per key, then (STRING=2, length, utf-8 value) per value.
_KEY_PREFIX = struct.pack("<III", 1, 2, len(_JOIN_KEY)) + _JOIN_KEY


def entity_key_bytes(customer_id: str) -> bytes:
    """Feast's serialised entity key (version 3) of one customer (equal to
    ``feast.infra.key_encoding_utils.serialize_entity_key``; a test checks it)."""
    value = customer_id.encode()
    return _KEY_PREFIX + struct.pack("<II", 2, len(value)) + value


# A backend returns {view: (event time in epoch seconds, {feature: value})}.
Rows = dict[str, tuple[float, dict[str, FeatureValue]]]
_FROM_TEXT: dict[type, Callable[[str], FeatureValue]] = {
    str: str,
    int: int,
    float: float,
    bool: lambda s: s == "True",
}


def _proto_decoder() -> Callable[[str, bytes], FeatureValue]:
    """Decode Feast's ``ValueProto`` bytes of a named feature (None if null or mistyped)."""
    from feast.protos.feast.types.Value_pb2 import Value

    def decode(name: str, blob: bytes) -> FeatureValue:
        proto = Value()
        proto.ParseFromString(blob)
        oneof = _ONEOF[ALL_FEATURES[name]]
        return getattr(proto, oneof) if proto.WhichOneof("val") == oneof else None

    return decode


class SqliteBackend:
    """Reads Feast's SQLite online tables with one prepared ``UNION ALL`` statement,
    through a :class:`~features.cache.RowCache` when one is given (see that module for
    its staleness bound)."""

    def __init__(
        self, db_path: Path, views: list[ViewSpec], timeout: float, cache: RowCache | None = None
    ) -> None:
        self.db_path = db_path
        self._db_str = os.fspath(db_path)  # stat() of a str skips Path.__fspath__ per read
        self.timeout = timeout
        self.cache = cache
        if cache is not None and not create_journal(db_path):
            self.cache = None  # a store we cannot write to: no journal, so no cache
        self._views = [v.name for v in views]
        selects = [
            f'SELECT {i}, feature_name, value_text, value, event_ts FROM "{v.table}" '
            "WHERE entity_key = ?1"
            for i, v in enumerate(views)
        ]
        self._sql = " UNION ALL ".join(selects)
        self._sql_view = {v.name: sql for v, sql in zip(views, selects, strict=True)}
        self._local = threading.local()
        self._text = {f: _FROM_TEXT[t] for f, t in ALL_FEATURES.items()}
        self._proto = _proto_decoder()

    def _conn(self) -> sqlite3.Connection:
        try:
            ino = os.stat(self._db_str).st_ino
        except OSError as exc:
            raise FeatureStoreUnavailable(f"online store {self.db_path} is missing") from exc
        cached = getattr(self._local, "conn", None)
        if cached is not None and cached[1] == ino:
            return cached[0]
        if cached is not None:  # the file was replaced (re-init): reopen
            self._close_local()
            if self.cache is not None:  # a journal missing there is created on first use
                self.cache.clear()
        try:
            conn = sqlite3.connect(
                f"file:{self.db_path}?mode=ro",
                uri=True,
                timeout=self.timeout,
                check_same_thread=False,
                cached_statements=16,
            )
        except sqlite3.Error as exc:
            raise FeatureStoreUnavailable(
                f"cannot open online store {self.db_path}: {exc}"
            ) from exc
        self._local.conn = (conn, ino)
        # the WAL-index header skips the data_version check while nothing was committed
        self._local.state = {
            "wal": WalWatch.open(conn, self._db_str) if self.cache is not None else None
        }
        return conn

    def _close_local(self) -> None:
        """Close this thread's connection (its WAL watch first: see WalWatch)."""
        cached = getattr(self._local, "conn", None)
        state = getattr(self._local, "state", None) or {}
        if state.get("wal") is not None:
            state["wal"].close()
            state["wal"] = None
        if cached is not None:
            cached[0].close()
            self._local.conn = None

    def read(self, key: bytes, view: str | None = None) -> Rows:
        """Every view's row (or one view's): from the cache when it holds the customer and
        nothing changed them since, else from the store. Callers must not mutate it."""
        conn = self._conn()
        cache = self.cache
        if cache is None:
            return self._read_store(conn, key, view)
        try:
            try:
                cache.sync(conn, self._local.state)
            except sqlite3.OperationalError as exc:
                # a store restored from a copy without its journal: recreate it, start over
                if "no such table" not in str(exc) or not create_journal(self.db_path):
                    raise
                cache.clear()
                self._local.state = {"wal": self._local.state.get("wal")}
                cache.sync(conn, self._local.state)
        except sqlite3.Error as exc:
            self.close()
            raise FeatureStoreUnavailable(f"online store unreadable: {exc}") from exc
        rows = cache.get(key)
        if rows is None:
            generation = cache.generation
            rows = self._read_store(conn, key, None)
            cache.put(key, rows, generation)
        if view is None:
            return rows
        return {view: rows[view]} if view in rows else {}

    def _read_store(self, conn: sqlite3.Connection, key: bytes, view: str | None) -> Rows:
        """Feast's ``value_text`` column (``str()`` of the value, exact for these types) is
        decoded by type; the ``ValueProto`` is parsed only where it is NULL."""
        sql = self._sql if view is None else self._sql_view[view]
        try:
            rows = conn.execute(sql, (key,)).fetchall()
        except sqlite3.Error as exc:
            self.close()
            raise FeatureStoreUnavailable(f"online store unreadable: {exc}") from exc
        text = self._text
        last = -1
        values: dict[str, FeatureValue] = {}
        newest: dict[int, Any] = {}  # a view's age is its latest write (rows may differ)
        found: dict[int, dict[str, FeatureValue]] = {}
        for idx, name, value_text, blob, ts in rows:
            if idx != last:
                values = found[idx] = {}
                newest[idx] = ts
                last = idx
            elif ts > newest[idx]:
                newest[idx] = ts
            convert = text.get(name)
            if convert is None:
                continue
            if value_text is not None:
                values[name] = convert(value_text)
            elif blob is not None and (decoded := self._proto(name, blob)) is not None:
                values[name] = decoded
        return {self._views[i]: (sqlite_ts(newest[i]), v) for i, v in found.items()}

    def ping(self) -> bool:
        try:
            self._read_store(self._conn(), b"", None)
        except FeatureStoreUnavailable:
            return False
        return True

    def close(self) -> None:
        self._close_local()


def sqlite_ts(value: Any) -> float:
    """Feast stores a naive-UTC datetime through ``datetime.timestamp()`` (local time)."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value).replace(tzinfo=UTC).timestamp()
    if isinstance(value, bytes):
        value = value.decode()
    parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def redis_client(connection_string: str, timeout: float) -> Any:
    """A ``redis.Redis`` client for Feast's Redis ``connection_string``
    (``host:port[,password=…][,username=…][,db=N]``), failing fast (no retries)."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    host, _, rest = connection_string.partition(":")
    port, *options = rest.split(",") if rest else ("6379",)
    kwargs: dict[str, Any] = {}
    for opt in options:
        k, _, v = opt.partition("=")
        if k in {"password", "username"}:
            kwargs[k] = v
        elif k == "db":
            kwargs["db"] = int(v)
    return redis.Redis(
        host=host or "127.0.0.1",
        port=int(port),
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        **kwargs,
    )


class RedisBackend:
    """Reads Feast's Redis hash of one customer with a single ``HMGET``."""

    def __init__(
        self, connection_string: str, project: str, views: list[ViewSpec], timeout: float
    ) -> None:
        from feast.infra.online_stores.helpers import _mmh3

        self.client = redis_client(connection_string, timeout)
        self.project = project.encode()
        # (fields, slots) of all views (key None) and of each view; a slot is
        # (view, feature), feature None for the view's ``_ts`` field
        self._fields: dict[str | None, tuple[list[bytes], list[tuple[str, str | None]]]] = {}
        every: tuple[list[bytes], list[tuple[str, str | None]]] = ([], [])
        for v in views:
            fields = [_mmh3(f"{v.name}:{f}") for f in v.features] + [f"_ts:{v.name}".encode()]
            slots: list[tuple[str, str | None]] = [(v.name, f) for f in v.features]
            slots.append((v.name, None))
            self._fields[v.name] = (fields, slots)
            every[0].extend(fields)
            every[1].extend(slots)
        self._fields[None] = every
        self._proto = _proto_decoder()

    def redis_key(self, key: bytes) -> bytes:
        return key + self.project

    def read(self, key: bytes, view: str | None = None) -> Rows:
        """Every view's row (or one view's)."""
        import redis
        from google.protobuf.timestamp_pb2 import Timestamp

        fields, slots = self._fields[view]
        try:
            values = self.client.hmget(self.redis_key(key), fields)
        except redis.RedisError as exc:
            raise FeatureStoreUnavailable(f"redis online store unreachable: {exc}") from exc
        features: dict[str, dict[str, FeatureValue]] = {}
        out: Rows = {}
        for (name, feature), raw in zip(slots, values, strict=True):
            if raw is None:
                continue
            if feature is None:
                ts = Timestamp()
                ts.ParseFromString(raw)
                out[name] = (ts.seconds + ts.nanos / 1e9, features.setdefault(name, {}))
            elif (decoded := self._proto(feature, raw)) is not None:
                features.setdefault(name, {})[feature] = decoded
        return out

    def ping(self) -> bool:
        import redis

        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        self.client.close()


class FeastFeatureSource:
    """All features of one customer from Feast's online store, as a typed record.

    Unknown customer (no row in any view): :data:`features.schema.DEFAULTS`, ``known=False``.
    A view with no row for a known customer also falls back to its defaults. Values
    older than their view's TTL are served and named in ``stale``.
    """

    def __init__(
        self,
        repo_path: Path | str,
        *,
        timeout: float = 0.1,
        service: str = FEATURE_SERVICE,
        clock: Callable[[], float] = time.time,
        cache_size: int = 200_000,
        cache_seconds: float = 60.0,
    ) -> None:
        from feast import FeatureStore

        silence_feast_warnings()
        self.repo_path = Path(repo_path)
        if not (self.repo_path / "feature_store.yaml").exists():
            raise WorkspaceError(f"no Feast repo at {self.repo_path}: run `maestro init`")
        self.store = FeatureStore(repo_path=str(self.repo_path))
        self.views = resolve_views(self.store, service)
        self.clock = clock
        self.overlay = Overlay()
        #: customer id -> (the rows a record was built from, the record, when it turns stale)
        self._records: dict[str, tuple[Rows, CustomerFeatures, float]] = {}
        config = self.store.config.online_store
        if config.type == "sqlite":
            db = Path(config.path)
            db = db if db.is_absolute() else self.repo_path / db
            cache = RowCache(cache_size, cache_seconds) if cache_size > 0 else None
            self.backend: SqliteBackend | RedisBackend = SqliteBackend(
                db, self.views, timeout, cache
            )
        elif config.type == "redis":
            self.backend = RedisBackend(
                config.connection_string, self.store.config.project, self.views, timeout
            )
        else:
            raise WorkspaceError(f"unsupported online store type {config.type!r}")

    def rows(self, customer_id: str) -> Rows:
        """Each view's current row ``(event time, values)``: pending events over the store."""
        pending = self.overlay.snapshot(customer_id)  # before the store read: see overlay.py
        out = self.backend.read(entity_key_bytes(customer_id))
        return {**out, **pending} if pending else out

    def row(self, customer_id: str, view: str) -> tuple[float, dict[str, FeatureValue]] | None:
        """One view's current row (pending event over the store), or None."""
        pending = self.overlay.snapshot(customer_id)
        if view in pending:
            return pending[view]
        return self.backend.read(entity_key_bytes(customer_id), view).get(view)

    def get(self, customer_id: str) -> CustomerFeatures:
        """All features of one customer; raises ``FeatureStoreUnavailable`` when the store
        cannot be read within ``timeout``. The record's ``values`` are read-only; a record
        is reused while its rows are the cache's same rows and no view has turned stale."""
        rows = self.rows(customer_id)
        if not rows:
            self._records.pop(customer_id, None)  # erased: keep nothing of theirs
            return CustomerFeatures(customer_id, DEFAULTS, known=False)
        now = self.clock()
        memo = self._records.get(customer_id)
        if memo is not None and memo[0] is rows and now < memo[2]:
            return memo[1]
        merged: dict[str, FeatureValue] = dict(DEFAULTS)
        stale: list[str] = []
        turns_stale = float("inf")
        for spec in self.views:
            row = rows.get(spec.name)
            if row is None:
                continue
            merged.update(row[1])
            if spec.ttl_seconds:
                expires = row[0] + spec.ttl_seconds
                if now > expires:
                    stale.extend(spec.features)
                else:
                    turns_stale = min(turns_stale, expires)
        record = CustomerFeatures(
            customer_id, MappingProxyType(merged), known=True, stale=frozenset(stale)
        )
        cache = getattr(self.backend, "cache", None)
        if cache is not None:  # rows are the cache's own objects: identity means unchanged
            records = self._records
            records.pop(customer_id, None)
            records[customer_id] = (rows, record, turns_stale)
            if len(records) > cache.capacity:
                del records[next(iter(records))]
        return record

    def ping(self) -> bool:
        """True when the online store answers (for ``/readyz``)."""
        return self.backend.ping()

    def close(self) -> None:
        self.backend.close()


def open_feature_source(home_or_repo: Path | str, **kwargs: Any) -> FeastFeatureSource:
    """The source of a workspace (``$MAESTRO_HOME``) or of a Feast repo directory."""
    path = Path(home_or_repo)
    repo = path if (path / "feature_store.yaml").exists() else path / "feature_repo"
    return FeastFeatureSource(repo, **kwargs)
