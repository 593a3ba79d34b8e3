"""The embedded delivery outbox: one SQLite file (``$MAESTRO_HOME/deliveries.db``) in WAL
mode, shared by every process of the machine.

A lease is one ``UPDATE … RETURNING`` in a ``BEGIN IMMEDIATE`` transaction, so two processes
never take the same request; every later change is conditional on the lease it names.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from serving.delivery.errors import OutboxError
from serving.delivery.outbox import (
    CANCELLED,
    DEAD,
    DELIVERED,
    LEASED,
    PENDING,
    STATES,
    DeadLetter,
    Leased,
    decode,
    encode,
)
from serving.delivery.ports import DeliveryRequest
from serving.state.sqlite_tx import immediate, open_shared

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY, customer TEXT NOT NULL, state TEXT NOT NULL, request BLOB NOT NULL,
    cancel_on TEXT NOT NULL, triggered_at REAL NOT NULL, enqueued_at REAL NOT NULL,
    due REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, owner TEXT,
    reason TEXT, updated REAL NOT NULL);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, due);
CREATE INDEX IF NOT EXISTS outbox_customer ON outbox (customer, state);
CREATE TABLE IF NOT EXISTS seen (
    customer TEXT NOT NULL, type TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (customer, type));
"""
_SEP = "\x1f"
_OPEN = f"state IN ('{PENDING}', '{LEASED}')"
_LEASE = (
    f"UPDATE outbox SET state = '{LEASED}', due = ?1, attempts = attempts + 1, owner = ?2, "
    f"updated = ?3 WHERE id IN (SELECT id FROM outbox WHERE {_OPEN} AND due <= ?3 "
    "ORDER BY due LIMIT ?4) RETURNING request, attempts, enqueued_at"
)
_FENCE = f"WHERE id = ? AND state = '{LEASED}' AND owner = ? AND attempts = ?"
#: finished requests (delivered, cancelled) kept this long, so a late re-enqueue stays a no-op
KEEP_SECONDS = 7 * 86_400.0
PRUNE_EVERY = 1024


class SQLiteOutbox:
    """:class:`serving.delivery.outbox.Outbox` over one SQLite file.

    Parameters
    ----------
    path: Path
        The database file (made with its directory when missing).
    clock: callable
        Epoch seconds now (tests pass a fake clock).
    """

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self._lock = threading.Lock()
        self._writes = 0
        self._db = open_shared(self.path, _SCHEMA, error=OutboxError, what="delivery outbox")

    def _write(self, fn: Callable[..., object], *args: object) -> object:
        return immediate(self._db, self._lock, fn, *args, error=OutboxError,
                         what="delivery outbox")

    def _read(self, sql: str, args: Sequence[object] = ()) -> list[tuple]:  # type: ignore[type-arg]
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise OutboxError(f"delivery outbox: {exc}") from exc

    # ------------------------------------------------------------------ the queue
    def enqueue(self, request: DeliveryRequest) -> None:
        self._insert(request, None)

    def enqueue_leased(
        self, request: DeliveryRequest, lease_seconds: float, owner: str
    ) -> Leased | None:
        return self._insert(request, (lease_seconds, owner))

    def _insert(
        self, request: DeliveryRequest, lease: tuple[float, str] | None
    ) -> Leased | None:
        now = self.clock()
        state, due, attempts, owner = (
            (PENDING, now, 0, None) if lease is None else (LEASED, now + lease[0], 1, lease[1]))
        row = (request.delivery_id, request.customer_id, state, encode(request),
               _SEP + _SEP.join(request.cancel_on) + _SEP, request.triggered_at, now, due,
               attempts, owner, now)

        def run(db: sqlite3.Connection) -> bool:
            new = db.execute(
                "INSERT OR IGNORE INTO outbox (id, customer, state, request, cancel_on, "
                "triggered_at, enqueued_at, due, attempts, owner, updated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            ).rowcount == 1
            self._prune(db, now)
            return new

        new = self._write(run)
        return Leased(request, 1, lease[1], now) if new and lease is not None else None

    def _prune(self, db: sqlite3.Connection, now: float) -> None:
        """Every :data:`PRUNE_EVERY` writes, forget finished requests and noted events older
        than :data:`KEEP_SECONDS`."""
        self._writes += 1
        if self._writes % PRUNE_EVERY == 0:
            db.execute(f"DELETE FROM outbox WHERE state IN ('{DELIVERED}', '{CANCELLED}') "
                       "AND updated < ?", (now - KEEP_SECONDS,))
            db.execute("DELETE FROM seen WHERE at < ?", (now - KEEP_SECONDS,))

    def note_event(self, customer_id: str, event_type: str, at: float) -> int:
        if not self._read(f"SELECT 1 FROM outbox WHERE customer = ? AND {_OPEN} LIMIT 1",
                          (customer_id,)):
            return 0  # the common case: nothing open for the customer, nothing written
        now = self.clock()

        def run(db: sqlite3.Connection) -> int:
            db.execute(
                "INSERT INTO seen VALUES (?, ?, ?) ON CONFLICT (customer, type) "
                "DO UPDATE SET at = max(at, excluded.at)", (customer_id, event_type, at))
            return int(db.execute(
                f"UPDATE outbox SET state = '{CANCELLED}', reason = ?, updated = ? "
                f"WHERE customer = ? AND state = '{PENDING}' AND triggered_at < ? "
                "AND instr(cancel_on, ?) > 0",
                (f"event:{event_type}", now, customer_id, at, _SEP + event_type + _SEP),
            ).rowcount)

        return int(self._write(run))  # type: ignore[call-overload]

    # ------------------------------------------------------------------ the worker's side
    def lease(self, limit: int, lease_seconds: float, owner: str) -> list[Leased]:
        now = self.clock()
        if not self._read(f"SELECT 1 FROM outbox WHERE {_OPEN} AND due <= ? LIMIT 1", (now,)):
            return []  # nothing due: no write lock taken (other processes poll too)

        def run(db: sqlite3.Connection) -> list[tuple]:  # type: ignore[type-arg]
            return db.execute(_LEASE, (now + lease_seconds, owner, now, limit)).fetchall()

        rows = self._write(run)
        return [Leased(decode(r[0]), int(r[1]), owner, float(r[2])) for r in rows]  # type: ignore[attr-defined]

    def _finish(self, item: Leased, state: str, reason: str | None, due: float) -> bool:
        args = (state, reason, due, self.clock(), item.request.delivery_id, item.owner,
                item.attempt)

        def run(db: sqlite3.Connection) -> int:
            return int(db.execute(
                f"UPDATE outbox SET state = ?, reason = ?, due = ?, updated = ? {_FENCE}", args
            ).rowcount)

        return bool(self._write(run))

    def delivered(self, item: Leased) -> bool:
        return self._finish(item, DELIVERED, None, self.clock())

    def retry(self, item: Leased, due: float, error: str) -> bool:
        return self._finish(item, PENDING, error, due)

    def dead(self, item: Leased, reason: str) -> bool:
        return self._finish(item, DEAD, reason, self.clock())

    def cancel(self, item: Leased, reason: str) -> bool:
        return self._finish(item, CANCELLED, reason, self.clock())

    def cancelling_event(self, request: DeliveryRequest) -> str | None:
        if not request.cancel_on:
            return None
        marks = ",".join("?" * len(request.cancel_on))
        rows = self._read(
            f"SELECT type FROM seen WHERE customer = ? AND at > ? AND type IN ({marks}) LIMIT 1",
            (request.customer_id, request.triggered_at, *request.cancel_on),
        )
        return str(rows[0][0]) if rows else None

    # ------------------------------------------------------------------ dead letters
    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        rows = self._read(
            f"SELECT request, attempts, reason, updated FROM outbox WHERE state = '{DEAD}' "
            "ORDER BY updated LIMIT ?", (limit,))
        out = []
        for raw, attempts, reason, at in rows:
            r = decode(raw)
            out.append(DeadLetter(r.delivery_id, r.trigger, r.destination, r.customer_id,
                                  int(attempts), str(reason), float(at)))
        return out

    def requeue(self, delivery_ids: Sequence[str]) -> int:
        now = self.clock()

        def run(db: sqlite3.Connection) -> int:
            return sum(db.execute(
                f"UPDATE outbox SET state = '{PENDING}', attempts = 0, due = ?, updated = ?, "
                f"reason = NULL, owner = NULL WHERE id = ? AND state = '{DEAD}'",
                (now, now, d),
            ).rowcount for d in delivery_ids)

        return int(self._write(run))  # type: ignore[call-overload]

    def counts(self, states: Sequence[str] = STATES) -> dict[str, int]:
        return {s: int(self._read("SELECT count(*) FROM outbox WHERE state = ?", (s,))[0][0])
                for s in states}

    def close(self) -> None:
        with self._lock:
            self._db.close()
