"""The Feast-backed :class:`~features.source.FeatureSource` of the decision path.

Feast's SDK ``get_online_features`` spends most of a read of one customer's features in
request planning repeated on every call (its cost against this source's: BENCHMARKS.md,
"Feature store"). This source does that planning
once: on open it resolves the feature service ``policy_inputs_v1`` from Feast's
registry (:mod:`features.feast.views`: views, feature names, TTLs) and then reads Feast's
own online tables with one prepared statement (:mod:`features.feast.sqlite_backend`: one
``UNION ALL`` over the view tables, keyed by Feast's serialised entity key, decoding
Feast's ``value_text`` column by the schema's type) or one ``HMGET``
(:mod:`features.feast.redis_backend`: Feast keeps all views of an entity in one hash,
fields ``murmur3("<view>:<feature>")`` and ``_ts:<view>``, decoding Feast's
``ValueProto``; the row format itself is :mod:`features.feast.row_format`).
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

import time
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

from features.cache import RowCache
from features.errors import WorkspaceError
from features.feast.redis_backend import RedisBackend
from features.feast.row_format import Rows, entity_key_bytes
from features.feast.sqlite_backend import SqliteBackend
from features.feast.views import (
    FEATURE_SERVICE,
    resolve_views,
    silence_feast_warnings,
)
from features.overlay import Overlay
from features.schema import DEFAULTS
from features.source import CustomerFeatures, FeatureValue

__all__ = ["FeastFeatureSource", "open_feature_source"]


class FeastFeatureSource:
    """All features of one customer from Feast's online store, as a typed record.

    Unknown customer (no row in any view): the declared defaults, ``known=False``.
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
        #: what an unknown customer is served: the declared defaults of every view read
        self.defaults = MappingProxyType(
            {**DEFAULTS, **{f: d for v in self.views for f, d in v.defaults.items()}}
        )
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
            return CustomerFeatures(customer_id, self.defaults, known=False)
        now = self.clock()
        memo = self._records.get(customer_id)
        if memo is not None and memo[0] is rows and now < memo[2]:
            return memo[1]
        merged: dict[str, FeatureValue] = dict(self.defaults)
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
