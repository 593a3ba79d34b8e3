"""The embedded contact store: one SQLite file (``$MAESTRO_HOME/contacts.db``) in WAL mode,
shared safely by every process of the machine.

Reads take no lock (WAL readers never block) and read the version and the history in one
statement, one consistent snapshot; :meth:`SQLiteContactStore.commit` runs in a
``BEGIN IMMEDIATE`` transaction, so the version check, the budget count and the writes are one
atomic step across processes.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from policies.contact_rules import Contact
from serving.errors import ContactStoreError
from serving.state.contacts import (
    COMMITTED,
    CONFLICT,
    EXHAUSTED,
    Activation,
    Commit,
    Snapshot,
)
from serving.state.sqlite_tx import immediate, open_shared

_SCHEMA = """
CREATE TABLE IF NOT EXISTS contacts (
    key TEXT PRIMARY KEY, customer TEXT NOT NULL, ts REAL NOT NULL,
    channel TEXT NOT NULL, action TEXT NOT NULL, offer TEXT NOT NULL, category TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS contacts_by_customer ON contacts (customer, ts);
CREATE TABLE IF NOT EXISTS versions (customer TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS pending (
    event_id TEXT PRIMARY KEY, customer TEXT NOT NULL, ts REAL NOT NULL,
    channel TEXT NOT NULL, action TEXT NOT NULL, offer TEXT NOT NULL, category TEXT NOT NULL,
    expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS activated (event_id TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS reservations (
    event_id TEXT PRIMARY KEY, bucket TEXT NOT NULL, expires REAL);
CREATE INDEX IF NOT EXISTS reservations_by_bucket ON reservations (bucket, expires);
"""
#: versions only grow, and a re-created customer (after erasure) starts past every version
#: it had: each write stamps max(previous + 1, now in µs)
_BUMP = (
    "INSERT INTO versions (customer, n) VALUES (?1, ?2) "
    "ON CONFLICT (customer) DO UPDATE SET n = max(n + 1, ?2)"
)
#: the version and the history in one statement (one consistent read)
_READ = (
    "SELECT 0.0, '', '', '', '', coalesce((SELECT n FROM versions WHERE customer = ?1), 0) "
    "UNION ALL SELECT ts, channel, action, offer, category, 0 FROM contacts "
    "WHERE customer = ?1 AND ts > ?2"
)
_USED = (
    "SELECT count(*) FROM reservations WHERE bucket = ? AND (expires IS NULL OR expires > ?)"
)


#: contacts written between two prunes of those older than the retention
PRUNE_EVERY = 256
#: customers whose history a process keeps (then the cache starts again)
CACHE_SIZE = 100_000


def _stamp() -> int:
    return time.time_ns() // 1000


class _Exhausted(Exception):
    """Raised inside a commit's transaction to roll it back: the budget is spent."""


class SQLiteContactStore:
    """:class:`serving.state.contacts.ContactStore` over one SQLite file.

    Parameters
    ----------
    path: Path
        The database file (made with its directory when missing).
    retention_seconds: float
        Contacts older than this are deleted as new ones are written (the longest window
        any rule reads).
    """

    def __init__(self, path: Path, retention_seconds: float = 90 * 86_400.0) -> None:
        self.path = Path(path)
        self.retention_seconds = retention_seconds
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._writes = 0
        #: customer → (version, since, history newer than since) as last read or written
        self._cache: dict[str, tuple[int, float, tuple[Contact, ...]]] = {}
        self._db = open_shared(self.path, _SCHEMA, error=ContactStoreError, what="contact store")

    # ------------------------------------------------------------------ reads
    def read(
        self, customer_id: str, since: float, buckets: Sequence[str], now: float
    ) -> Snapshot:
        with self._lock:
            try:
                db = self._db
                used = {b: db.execute(_USED, (b, now)).fetchone()[0] for b in buckets}
                cached = self._cache.get(customer_id)
                if cached is not None and cached[1] <= since:
                    row = db.execute(
                        "SELECT n FROM versions WHERE customer = ?", (customer_id,)
                    ).fetchone()
                    if (row[0] if row else 0) == cached[0]:  # unchanged since: no rows read
                        history = tuple(c for c in cached[2] if c.ts > since)
                        return Snapshot(history, cached[0], used)
                rows = db.execute(_READ, (customer_id, since)).fetchall()
            except sqlite3.Error as exc:
                raise ContactStoreError(f"contact store: {exc}") from exc
            history = tuple(Contact(*r[:5]) for r in rows[1:])
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[customer_id] = (rows[0][5], since, history)
        return Snapshot(history, rows[0][5], used)

    def touches(self, customer_id: str, since: float) -> list[tuple[str, Contact]]:
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT key, ts, channel, action, offer, category FROM contacts "
                    "WHERE customer = ? AND ts > ? ORDER BY ts, key", (customer_id, since),
                ).fetchall()
            except sqlite3.Error as exc:
                raise ContactStoreError(f"contact store: {exc}") from exc
        return [(r[0], Contact(*r[1:])) for r in rows]

    def used(self, buckets: Sequence[str], now: float) -> dict[str, int]:
        with self._lock:
            return {b: self._db.execute(_USED, (b, now)).fetchone()[0] for b in buckets}

    def activated(self, event_ids: Sequence[str]) -> set[str]:
        ids = list(event_ids)
        found: set[str] = set()
        with self._lock:
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                marks = ",".join("?" * len(chunk))
                found.update(r[0] for r in self._db.execute(
                    f"SELECT event_id FROM activated WHERE event_id IN ({marks})", chunk
                ))
        return found

    # ------------------------------------------------------------------ writes
    def _write(self, fn, *args):  # type: ignore[no-untyped-def]
        """Run ``fn(db, *args)`` in one IMMEDIATE transaction (rolled back on error)."""
        return immediate(
            self._db, self._lock, fn, *args, error=ContactStoreError, what="contact store"
        )

    def _insert(
        self, db: sqlite3.Connection, customer_id: str, key: str, c: Contact, bump: bool = True
    ) -> bool:
        cur = db.execute(
            "INSERT OR IGNORE INTO contacts VALUES (?, ?, ?, ?, ?, ?, ?)",
            (key, customer_id, c.ts, c.channel, c.action_id, c.offer, c.category),
        )
        if cur.rowcount == 0:
            return False
        if bump:
            db.execute(_BUMP, (customer_id, _stamp()))
        self._writes += 1
        if self._writes % PRUNE_EVERY == 0:  # reads filter by time: pruning is only space
            db.execute("DELETE FROM contacts WHERE ts < ?", (c.ts - self.retention_seconds,))
        return True

    def commit(self, write: Commit, now: float) -> str:
        customer_id, event_id, version, contact, pending, reservation = write

        advanced: list[int] = []

        def run(db: sqlite3.Connection) -> str:
            if version is not None:
                new = self._advance(db, customer_id, version)
                if new is None:
                    return CONFLICT
                advanced.append(new)
            if reservation is not None:
                if db.execute(_USED, (reservation.bucket, now)).fetchone()[0] >= reservation.max:
                    raise _Exhausted
                db.execute(
                    "INSERT OR REPLACE INTO reservations VALUES (?, ?, ?)",
                    (event_id, reservation.bucket, reservation.expires),
                )
            if contact is not None:
                self._insert(db, customer_id, event_id, contact, bump=version is None)
            if pending is not None:
                c = pending.contact
                db.execute(
                    "INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (event_id, customer_id, c.ts, c.channel, c.action_id, c.offer, c.category,
                     pending.expires),
                )
                self._writes += 1
                if self._writes % PRUNE_EVERY == 0:
                    db.execute("DELETE FROM pending WHERE expires < ?", (now,))
            return COMMITTED

        try:
            status = str(self._write(run))
        except _Exhausted:  # rolled back: the version stays as it was
            return EXHAUSTED
        if advanced and contact is not None:  # the cached history follows our own write
            with self._lock:
                cached = self._cache.get(customer_id)
                if cached is not None and cached[0] == version:
                    self._cache[customer_id] = (advanced[0], cached[1], (*cached[2], contact))
        return status

    @staticmethod
    def _advance(db: sqlite3.Connection, customer_id: str, version: int) -> int | None:
        """Compare-and-advance the customer's version in one statement: the new version, or
        None when it is no longer ``version``."""
        stamp = _stamp()
        if version == 0:
            cur = db.execute("INSERT OR IGNORE INTO versions VALUES (?, ?)", (customer_id, stamp))
            return stamp if cur.rowcount == 1 else None
        row = db.execute(
            "UPDATE versions SET n = max(n + 1, ?) WHERE customer = ? AND n = ? RETURNING n",
            (stamp, customer_id, version),
        ).fetchone()
        return None if row is None else int(row[0])

    def record(self, customer_id: str, key: str, contact: Contact) -> bool:
        return bool(self._write(self._insert, customer_id, key, contact))

    def activate(self, event_id: str, now: float) -> Activation:
        def run(db: sqlite3.Connection) -> Activation:
            if db.execute("SELECT 1 FROM activated WHERE event_id = ?", (event_id,)).fetchone():
                return Activation(duplicate=True, counted=False)
            db.execute("INSERT INTO activated VALUES (?, ?)", (event_id, now))
            db.execute("UPDATE reservations SET expires = NULL WHERE event_id = ?", (event_id,))
            row = db.execute(
                "SELECT customer, ts, channel, action, offer, category FROM pending "
                "WHERE event_id = ?",
                (event_id,),
            ).fetchone()
            if row is None:
                return Activation(duplicate=False, counted=False)
            db.execute("DELETE FROM pending WHERE event_id = ?", (event_id,))
            counted = self._insert(db, row[0], event_id, Contact(*row[1:]))
            return Activation(duplicate=False, counted=counted)

        result: Activation = self._write(run)
        return result

    def remove(self, event_id: str) -> bool:
        def run(db: sqlite3.Connection) -> bool:
            row = db.execute(
                "SELECT customer FROM contacts WHERE key = ?", (event_id,)
            ).fetchone()
            n = db.execute("DELETE FROM reservations WHERE event_id = ?", (event_id,)).rowcount
            n += db.execute("DELETE FROM pending WHERE event_id = ?", (event_id,)).rowcount
            if row is not None:
                db.execute("DELETE FROM contacts WHERE key = ?", (event_id,))
                db.execute(_BUMP, (row[0], _stamp()))
                n += 1
            return n > 0

        return bool(self._write(run))

    def erase_customer(self, customer_id: str) -> dict[str, int]:
        def run(db: sqlite3.Connection) -> dict[str, int]:
            contacts = db.execute(
                "DELETE FROM contacts WHERE customer = ?", (customer_id,)
            ).rowcount
            pending = db.execute("DELETE FROM pending WHERE customer = ?", (customer_id,)).rowcount
            db.execute("DELETE FROM versions WHERE customer = ?", (customer_id,))
            return {"contacts": contacts + pending}

        result: dict[str, int] = self._write(run)
        return result

    def close(self) -> None:
        with self._lock:
            self._db.close()
