"""The log index every replica shares (``logs/index.db``): the answers given to
``request_id``s (kept 24 h) and the reward index — which reward counts for each event id.

A reward is first *claimed* in the index (one ``INSERT ... ON CONFLICT``: the first claim
per event id wins, ``sum`` mode counts them all), then appended to the claimant's spool.
A process killed between the two would leave a claim whose reward was never written:
the client, never acknowledged, retries, finds the claim and is told ``duplicate`` — an
acknowledged reward lost. So each claim names its claimant replica until the segment
holding its record has been rolled to Parquet (:meth:`SharedLogIndex.confirm`); when a dead
replica's spool is recovered, its claims still unconfirmed were never written and are
released (:meth:`SharedLogIndex.release`), so the retry counts.

The same database holds the erasure tombstones (:mod:`serving.eventlog.tombstones`).
This is the embedded implementation of :class:`serving.state.ports.LogIndex`; the
networked one is :mod:`serving.state.log_index_postgres`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from serving.errors import EventLogError

_DDL = (
    "CREATE TABLE IF NOT EXISTS reward_index (event_id TEXT PRIMARY KEY, reward REAL NOT NULL,"
    " count INTEGER NOT NULL, timestamp REAL NOT NULL, replica TEXT)",
    "CREATE TABLE IF NOT EXISTS requests (request_key TEXT PRIMARY KEY, response TEXT NOT NULL,"
    " timestamp REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS erasures (customer_hash TEXT PRIMARY KEY, erased_at REAL NOT NULL)",
)
#: rows confirmed per transaction (about a millisecond on this machine)
CONFIRM_CHUNK = 256
_CLAIMS_INDEX = (
    "CREATE INDEX IF NOT EXISTS reward_index_unconfirmed ON reward_index (replica)"
    " WHERE replica IS NOT NULL"
)
_CLAIM = (
    "INSERT INTO reward_index (event_id, reward, count, timestamp, replica)"
    " VALUES (?, ?, 1, ?, ?) ON CONFLICT(event_id) DO UPDATE SET count = count + 1,"
    " reward = reward + (CASE WHEN ? = 'sum' THEN excluded.reward ELSE 0 END)"
    " RETURNING count, replica"
)


def connect(path: Path) -> sqlite3.Connection:
    """The index database (WAL, autocommit), its tables created or brought up to date."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    for ddl in _DDL:
        conn.execute(ddl)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(reward_index)")}
    if "replica" not in columns:  # an index written before claims named their replica
        conn.execute("ALTER TABLE reward_index ADD COLUMN replica TEXT")
    conn.execute(_CLAIMS_INDEX)
    return conn


class SharedLogIndex:
    """The reward claims of one process (``replica``) in the shared index database."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.Lock, replica: str) -> None:
        self._conn = conn
        self._lock = lock
        self.replica = replica

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def execute(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Cursor:
        try:
            with self._lock:
                return self._conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise EventLogError(f"cannot use the shared log index: {exc}") from exc

    @contextlib.contextmanager
    def transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction on the connection, under the lock; errors
        become :class:`EventLogError` saying what could not be done."""
        try:
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise EventLogError(f"cannot {what}: {exc}") from exc

    def remember_request(self, request_key: str, response: str, now: float) -> None:
        self.execute(
            "INSERT OR IGNORE INTO requests (request_key, response, timestamp) VALUES (?, ?, ?)",
            (request_key, response, now),
        )

    def find_request(self, request_key: str) -> str | None:
        row = self.execute(
            "SELECT response FROM requests WHERE request_key = ?", (request_key,)
        ).fetchone()
        return row[0] if row else None

    def forget_requests_before(self, timestamp: float) -> None:
        self.execute("DELETE FROM requests WHERE timestamp < ?", (timestamp,))

    def forget_requests(self, prefix: str) -> int:
        return self.execute(
            "DELETE FROM requests WHERE substr(request_key, 1, ?) = ?", (len(prefix), prefix)
        ).rowcount

    def record_erasure(self, customer_hash: str, at: float, keep_seconds: float) -> None:
        with self.transaction("record an erasure in the log index") as conn:
            conn.execute(
                "INSERT INTO erasures (customer_hash, erased_at) VALUES (?, ?) ON CONFLICT"
                "(customer_hash) DO UPDATE SET erased_at = excluded.erased_at",
                (customer_hash, at),
            )
            conn.execute("DELETE FROM erasures WHERE erased_at < ?", (at - keep_seconds,))

    def erasures(self) -> dict[str, float]:
        return dict(self.execute("SELECT customer_hash, erased_at FROM erasures", ()).fetchall())

    def is_claimed(self, event_id: str) -> bool:
        return (
            self.execute("SELECT 1 FROM reward_index WHERE event_id = ?", (event_id,)).fetchone()
            is not None
        )

    def claim(self, event_id: str, reward: float, now: float, mode: str) -> tuple[int, str | None]:
        """Claim ``event_id``'s reward; return the claim count (1: this one is first) and
        the replica whose claim is not yet confirmed, if any."""
        count, claimant = self.execute(
            _CLAIM, (event_id, reward, now, self.replica, mode)
        ).fetchone()
        return int(count), claimant

    def confirm(self, event_ids: Iterable[str], replica: str) -> None:
        """The rewards of ``event_ids`` claimed by ``replica`` are in Parquet now. Runs on
        the roll thread in transactions of ``CONFIRM_CHUNK`` rows, so a reward claim on
        the serving thread waits for one chunk at most, not a whole segment's."""
        rows = [(e, replica) for e in event_ids]
        for start in range(0, len(rows), CONFIRM_CHUNK):
            chunk = rows[start : start + CONFIRM_CHUNK]
            with self.transaction("confirm rewards in the log index") as conn:
                conn.executemany(
                    "UPDATE reward_index SET replica = NULL WHERE event_id = ? AND replica = ?",
                    chunk,
                )

    def release(self, replica: str) -> int:
        """Drop the claims a dead ``replica`` never wrote (call after rolling its spool);
        return how many."""
        return self.execute("DELETE FROM reward_index WHERE replica = ?", (replica,)).rowcount


def sqlite_index_opener(logs_dir: Path) -> Callable[[str], SharedLogIndex]:
    """Opens ``logs_dir/index.db`` for a replica (the embedded default)."""

    def open_index(replica: str) -> SharedLogIndex:
        Path(logs_dir).mkdir(parents=True, exist_ok=True)
        return SharedLogIndex(connect(Path(logs_dir) / "index.db"), threading.Lock(), replica)

    return open_index
