"""Erasure of one customer from the feature store: online rows and offline Parquet
(the synthetic customers and every declared source's staged rows).

The online store is cleared through the same tables/hash Feast reads (SQLite: every
view table's rows under the customer's entity key; Redis: the customer's hash); the
offline Parquet is rewritten without the customer's rows (atomically, by rename), so a
later ``maestro init``/materialisation cannot bring the customer back. Pending events of
the customer held by this process's :class:`~features.event_writer.EventWriter` are
dropped first; other processes' pending rows meet a tombstone in the online store when
they flush (:mod:`features.tombstones`), so no flush can re-create the rows.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from features.cache import record_changes
from features.errors import FeatureStoreUnavailable
from features.feast.internals import delete_redis_row, delete_sqlite_rows
from features.feast.redis_backend import RedisBackend
from features.feast.row_format import entity_key_bytes
from features.feast.sqlite_backend import SqliteBackend
from features.tombstones import record_erasure_redis, record_erasure_sqlite
from features.workspace import customers_parquet

if TYPE_CHECKING:
    from features.event_writer import EventWriter
    from features.feast.source import FeastFeatureSource


@dataclass(frozen=True)
class ErasureCounts:
    """What was erased: online feature values, offline Parquet rows, pending event rows."""

    customer_id: str
    online_values: int
    offline_rows: int
    pending_rows: int

    def as_dict(self) -> dict[str, int | str]:
        return asdict(self)

    def counts(self) -> dict[str, int]:
        """The erasure record's keys: ``online_values``, ``offline_rows``, ``pending_rows``."""
        return {
            "online_values": self.online_values,
            "offline_rows": self.offline_rows,
            "pending_rows": self.pending_rows,
        }


def _erase_sqlite(backend: SqliteBackend, tables: list[str], key: bytes) -> int:
    try:
        conn = sqlite3.connect(backend.db_path, timeout=5.0)
    except sqlite3.Error as exc:
        raise FeatureStoreUnavailable(f"cannot open online store: {exc}") from exc
    try:
        with conn:
            removed = delete_sqlite_rows(conn, tables, key)
            record_changes(conn, [key])  # every process's feature cache drops the customer
            # no other process's pending rows of this customer can be written after this
            record_erasure_sqlite(conn, key, time.time())
            return removed
    except sqlite3.Error as exc:
        raise FeatureStoreUnavailable(f"cannot erase from online store: {exc}") from exc
    finally:
        conn.close()


def _erase_redis(backend: RedisBackend, key: bytes) -> int:
    import redis

    redis_key = backend.redis_key(key)
    try:
        # the tombstone first: a writer that read none before this fails its EXEC and
        # re-checks; one that wrote before this is undone by the delete
        record_erasure_redis(backend.client, redis_key, time.time())
        return delete_redis_row(backend, key)
    except redis.RedisError as exc:
        raise FeatureStoreUnavailable(f"cannot erase from redis: {exc}") from exc


def _erase_offline(source: FeastFeatureSource, customer_id: str) -> int:
    """The customer's rows out of the synthetic Parquet and every declared source's
    staged Parquet (the offline data Feast materialises and trains from)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from core.parquet import read_table

    staged = sorted((Path(source.repo_path) / "data" / "staged").glob("*.parquet"))
    removed = 0
    for path in [customers_parquet(source.repo_path), *staged]:
        if not path.exists():
            continue
        table = read_table(path)
        kept = table.filter(pc.not_equal(table["customer_id"], customer_id))
        if table.num_rows != kept.num_rows:
            removed += table.num_rows - kept.num_rows
            tmp = path.with_suffix(".parquet.erasing")
            pq.write_table(kept, tmp)
            os.replace(tmp, path)
    return removed


def erase_customer(
    source: FeastFeatureSource, customer_id: str, writer: EventWriter | None = None
) -> ErasureCounts:
    """Erase ``customer_id`` from the online store and the offline data; returns counts."""
    pending = writer.erase(customer_id) if writer is not None else source.overlay.erase(customer_id)
    key = entity_key_bytes(customer_id)
    backend = source.backend
    if isinstance(backend, SqliteBackend):
        online = _erase_sqlite(backend, [v.table for v in source.views], key)
    else:
        online = _erase_redis(backend, key)
    offline = _erase_offline(source, customer_id)
    return ErasureCounts(customer_id, online, offline, pending)


class WorkspaceFeatureEraser:
    """The feature store of a workspace's Feast repo, erased offline (``maestro erase``):
    opens the repo, erases the customer's online and offline rows, closes it. A
    workspace without a Feast repo holds no feature rows: nothing to erase, no counts."""

    name = "feature_store"
    #: what it erases under ``$MAESTRO_HOME`` (a Redis online store is off the disk)
    holds: ClassVar[tuple[str, ...]] = (
        "feature_repo/data/online_store.db",
        "feature_repo/data/customers.parquet",
        "feature_repo/data/staged/",
    )

    def __init__(self, repo: Path) -> None:
        self.repo = Path(repo)

    def erase(self, customer_id: str) -> dict[str, int]:
        if not (self.repo / "feature_store.yaml").exists():
            return {}
        from features.feast.source import open_feature_source

        source = open_feature_source(self.repo)
        try:
            return erase_customer(source, customer_id).counts()
        finally:
            source.close()
