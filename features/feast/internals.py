"""Every call into Feast's private API, in one place.

Maestro reaches past Feast's public SDK where the SDK has no verb for what it needs:

- :func:`provider` — the online provider (``FeatureStore._get_provider()``), to write
  batches of rows (``online_write_batch``) and to (re)create online tables;
- :func:`online_connection` — the SQLite online store's own connection
  (``online_store._get_conn``), so a journal entry commits in Feast's transaction and
  WAL is switched on in the file Feast opens;
- :func:`clear_online_views` — drop every online row of some views (Feast has no
  "truncate"); :func:`delete_sqlite_rows` and :func:`delete_redis_row` — drop one
  customer's online rows in Feast's table / hash layout (Feast has no "delete entity").

The row codecs (:mod:`features.feast.row_io`, :mod:`features.feast.sqlite_writer`,
:mod:`features.feast.view_writer`, :mod:`features.feast.row_format`) are the other half:
Feast's on-disk row format. The version bound in :mod:`features.feast` covers both;
``tests/features/test_feast_adapter.py`` and ``tests/features/test_bulk_materialize.py``
fail loudly when an upgrade changes what they rely on.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from features.source import FeatureValue

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

    from features.feast.redis_backend import RedisBackend

_ONEOF = {str: "string_val", int: "int64_val", float: "double_val", bool: "bool_val"}


def provider(store: FeatureStore) -> Any:
    """The store's online provider (Feast's ``PassthroughProvider``)."""
    return store._get_provider()


def online_connection(store: FeatureStore) -> sqlite3.Connection:
    """The SQLite online store's own connection (the one its SDK writes through)."""
    return provider(store).online_store._get_conn(store.config)


def enable_wal(store: FeatureStore) -> None:
    """WAL in the SQLite online store (persistent in the file): readers and the event
    writer then do not block each other. No-op for other online stores."""
    if store.config.online_store.type == "sqlite":
        online_connection(store).execute("PRAGMA journal_mode=WAL")


def clear_online_views(store: FeatureStore, views: list[Any], join_key: str) -> None:
    """Drop every online row of ``views`` (entity ``join_key``), (re)creating their tables
    first: a deleted SQLite file lost them without the registry knowing."""
    from feast.infra.online_stores.helpers import compute_table_id

    online_provider = provider(store)
    online_provider.update_infra(
        store.config.project,
        tables_to_delete=[],
        tables_to_keep=views,
        entities_to_delete=[],
        entities_to_keep=store.list_entities(),
        partial=True,
    )
    online = online_provider.online_store
    if store.config.online_store.type == "sqlite":
        conn = online._get_conn(store.config)
        with conn:
            for view in views:
                conn.execute(f'DELETE FROM "{compute_table_id(store.config.project, view)}"')
    elif hasattr(online, "delete_entity_values"):
        online.delete_entity_values(store.config, [join_key])


def push_online_journaled(
    store: FeatureStore, push_source: str, frame: pd.DataFrame, journal: Iterable[bytes]
) -> None:
    """``store.push(..., to=ONLINE)`` on a SQLite online store with the keys of
    ``journal`` recorded in Maestro's change journal (:mod:`features.cache`) in the same
    transaction, so readers' row caches drop exactly those keys."""
    from feast.data_source import PushMode

    from features.cache import record_changes

    # Feast's own connection, default isolation: the journal INSERT opens the
    # transaction, and Feast's ``with conn:`` commits the pushed rows in it
    conn = online_connection(store)
    try:
        record_changes(conn, journal)
        store.push(push_source, frame, to=PushMode.ONLINE)
    except BaseException:
        conn.rollback()
        raise


def write_through_provider(
    store: FeatureStore,
    feature_view: Any,
    types: Mapping[str, type],
    rows: Iterable[tuple[str, Mapping[str, FeatureValue], float]],
) -> None:
    """Rows ``(customer_id, {feature: value}, event time in epoch seconds)`` of one view
    written by Feast's provider as ``ValueProto`` values typed by ``types`` (for online
    stores Maestro does not write itself)."""
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    data = []
    for cid, values, ts in rows:
        protos = {name: Value(**{_ONEOF[types[name]]: v}) for name, v in values.items()}
        key = EntityKey(join_keys=["customer_id"], entity_values=[Value(string_val=cid)])
        data.append((key, protos, datetime.fromtimestamp(ts, tz=UTC), None))
    provider(store).online_write_batch(store.config, feature_view, data, None)


def delete_sqlite_rows(conn: sqlite3.Connection, tables: Sequence[str], key: bytes) -> int:
    """Delete the rows of serialised entity ``key`` from Feast's SQLite view ``tables``
    (inside the caller's transaction); returns how many feature values went."""
    return sum(
        conn.execute(f'DELETE FROM "{t}" WHERE entity_key = ?', (key,)).rowcount for t in tables
    )


def delete_redis_row(backend: RedisBackend, key: bytes) -> int:
    """Delete the Redis hash of serialised entity ``key`` (every view's fields); returns
    how many feature values it held (Feast's ``_ts:<view>`` fields are not values)."""
    redis_key = backend.redis_key(key)
    fields = backend.client.hkeys(redis_key)
    backend.client.delete(redis_key)
    return sum(1 for f in fields if not f.startswith(b"_ts:"))
