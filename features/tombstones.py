"""Erasure tombstones in the online store: a flush cannot bring an erased customer back.

Events are batched (:mod:`features.event_writer`): a process may hold a customer's
pending row — their events folded on the base row it read from the store — for a flush
interval (longer while the store is down). When another process (another replica, or
``maestro erase``) erases the customer meanwhile, writing that row would re-create
what was just erased. So erasure leaves a tombstone *in the online store itself* —
SQLite: a row of ``maestro_erased`` in the same transaction as the delete; Redis: a key
with a TTL, set before the customer's hash is deleted — and every batched write checks
the tombstones of its customers atomically with the write (SQLite: inside one ``BEGIN
IMMEDIATE`` transaction; Redis: ``WATCH`` on the tombstone keys, then ``MULTI``/``EXEC``,
retried when one changed). A pending row whose oldest data (``PendingRow.since``: the
first event's acceptance, before its base row was read) is not newer than the erasure
is dropped; events accepted after the erasure are written as usual.

Tombstones are kept :data:`TOMBSTONE_SECONDS` (a day): a row pending longer than that
(a store down for a day) is not checked against them. Writes through Feast's own
provider (online stores other than plain SQLite and single-node Redis) are not checked.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from features.feast.row_format import entity_key_bytes

if TYPE_CHECKING:
    from features.overlay import Item

TOMBSTONE_TABLE = "maestro_erased"
TOMBSTONE_SECONDS = 86_400
_DDL = (
    f'CREATE TABLE IF NOT EXISTS "{TOMBSTONE_TABLE}" '
    "(entity_key BLOB PRIMARY KEY, erased_at REAL NOT NULL)"
)
#: the Redis key prefix of a tombstone (followed by the customer's Feast hash key)
REDIS_PREFIX = b"maestro:erased:"


def record_erasure_sqlite(conn: sqlite3.Connection, key: bytes, at: float) -> None:
    """Inside the erasing transaction: tombstone ``key`` at ``at``, prune old tombstones."""
    conn.execute(_DDL)
    conn.execute(
        f'INSERT OR REPLACE INTO "{TOMBSTONE_TABLE}" (entity_key, erased_at) VALUES (?, ?)',
        (key, at),
    )
    conn.execute(f'DELETE FROM "{TOMBSTONE_TABLE}" WHERE erased_at < ?', (at - TOMBSTONE_SECONDS,))


def erased_sqlite(conn: sqlite3.Connection, keys: Sequence[bytes]) -> dict[bytes, float]:
    """Erasure times of those of ``keys`` with a tombstone (none: no table yet)."""
    out: dict[bytes, float] = {}
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        try:
            rows = conn.execute(
                f'SELECT entity_key, erased_at FROM "{TOMBSTONE_TABLE}" '
                f"WHERE entity_key IN ({', '.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return {}
            raise
        out.update((bytes(k), float(t)) for k, t in rows)
    return out


def survivors(
    items: Iterable[Item],
    erased: Mapping[bytes, float],
    key: Callable[[str], bytes] = entity_key_bytes,
) -> tuple[list[Item], int]:
    """The rows not erased after their data was accepted (``erased`` by ``key(customer)``),
    and how many were dropped."""
    if not erased:
        return list(items), 0
    kept: list[Item] = []
    dropped = 0
    for item in items:
        at = erased.get(key(item[0]))
        if at is not None and item[2].since <= at:
            dropped += 1
        else:
            kept.append(item)
    return kept, dropped


def record_erasure_redis(client: object, redis_key: bytes, at: float) -> None:
    """Tombstone the customer whose Feast hash is ``redis_key`` (expires by itself)."""
    client.set(REDIS_PREFIX + redis_key, repr(at), ex=TOMBSTONE_SECONDS)  # type: ignore[attr-defined]


def erased_redis(pipe: object, redis_keys: Sequence[bytes]) -> dict[bytes, float]:
    """Erasure times by Feast hash key, read through ``pipe`` in immediate (``WATCH``) mode."""
    unique = list(dict.fromkeys(redis_keys))
    if not unique:
        return {}
    stamps = pipe.mget([REDIS_PREFIX + k for k in unique])  # type: ignore[attr-defined]
    return {k: float(v) for k, v in zip(unique, stamps, strict=True) if v is not None}
