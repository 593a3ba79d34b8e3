"""The durable decision and reward log.

Write path (per process): every answered decision is one ``INSERT`` + commit into a
SQLite spool in WAL mode with ``synchronous=NORMAL`` — the row is in the operating
system's page cache (``write(2)`` to the WAL) before the answer is sent, so killing the
process loses nothing it answered. A background thread checkpoints the WAL every
``flush_ms`` (≤ 200 ms), which ``fsync``s it: the group commit that bounds how much a
power loss can take. Every ``roll_seconds`` (and on close / SIGTERM) the spool is rolled
into Parquet by a temporary file and an atomic rename, then the rolled rows are deleted.

Several replicas: each process owns one spool file ``logs/spool/<host>-<pid>-<rand>.db``
and holds an exclusive ``flock`` on ``<same>.lock`` for its life. On start a process rolls
every spool whose lock it can take (its owner died: kill -9, OOM), so a crash is
recovered by the next process to start. Reward idempotency is shared by every process
through ``logs/reward-index.db`` (one ``INSERT OR IGNORE`` keyed by event id).

Parquet datasets (read with ``pandas.read_parquet(dir)``; dedupe by ``event_id``, since a
request retried on another replica may be logged by both):

``$MAESTRO_HOME/logs/decisions/part-*.parquet`` — one row per answered ``/decide``:

=====================  ===================  ==============================================
column                 type                 meaning
=====================  ===================  ==============================================
event_id               string               signed id returned to the caller
request_id             string (nullable)    the caller's idempotency key
timestamp              timestamp[us, UTC]   decision time
customer_id            string
decision_point         string
customer_features      string (JSON)        exact customer features the policy saw
context                string (JSON)        the request's context as the policy saw it
actions                string (JSON)        eligible actions ``[{id, channel, features}]``
probabilities          string (JSON)        pmf over ``actions`` (same order), sums to 1
excluded               string (JSON)        ``[{action_id, reason}]`` removed by rules
action_id / channel    string (nullable)    chosen action (null: nothing eligible)
probability            float64              probability the chosen action was drawn with
policy / policy_version string              the policy that answered (``rules`` if degraded)
variant                string               ``champion`` | ``kill_switch`` | ``apprentice``
                                            | ``fallback``
explored               bool                 the draw was not the policy's greedy choice
degraded               bool                 a fallback answered (learn with care)
reward_deadline        timestamp[us, UTC]   end of the reward window
shadow_policy, shadow_policy_version, shadow_action_id, shadow_probability
                                            apprentice mode: what the learned policy
                                            would have chosen (null otherwise)
replica                string               the spool (process) that logged the row
=====================  ===================  ==============================================

``$MAESTRO_HOME/logs/rewards/part-*.parquet`` — one row per ``/reward`` call that named
an issued event id: ``event_id``, ``reward`` (float64), ``timestamp``, ``counted``
(counted: not late, and not a duplicate in ``first`` mode), ``duplicate``, ``late``,
``replica``. Training uses ``counted`` rows only (summing them in ``sum`` mode) and
gives events with none the decision point's default reward once the window is over.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from serving.errors import EventLogError

logger = logging.getLogger(__name__)

_DECISIONS_DDL = """CREATE TABLE IF NOT EXISTS decisions (
 id INTEGER PRIMARY KEY AUTOINCREMENT,
 event_id TEXT NOT NULL, request_id TEXT, timestamp REAL NOT NULL, customer_id TEXT NOT NULL,
 decision_point TEXT NOT NULL, customer_features TEXT NOT NULL, context TEXT NOT NULL,
 actions TEXT NOT NULL, probabilities TEXT NOT NULL, excluded TEXT NOT NULL, action_id TEXT,
 channel TEXT, probability REAL NOT NULL, policy TEXT NOT NULL, policy_version TEXT NOT NULL,
 variant TEXT NOT NULL, explored INTEGER NOT NULL, degraded INTEGER NOT NULL,
 reward_deadline REAL NOT NULL, shadow_policy TEXT, shadow_policy_version TEXT,
 shadow_action_id TEXT, shadow_probability REAL, replica TEXT NOT NULL)"""
_REWARDS_DDL = """CREATE TABLE IF NOT EXISTS rewards (
 id INTEGER PRIMARY KEY AUTOINCREMENT,
 event_id TEXT NOT NULL, reward REAL NOT NULL, timestamp REAL NOT NULL, counted INTEGER NOT NULL,
 duplicate INTEGER NOT NULL, late INTEGER NOT NULL, replica TEXT NOT NULL)"""
_REQUESTS_DDL = """CREATE TABLE IF NOT EXISTS requests (
 request_id TEXT PRIMARY KEY, response TEXT NOT NULL, timestamp REAL NOT NULL)"""
_INDEX_DDL = """CREATE TABLE IF NOT EXISTS reward_index (
 event_id TEXT PRIMARY KEY, reward REAL NOT NULL, count INTEGER NOT NULL,
 timestamp REAL NOT NULL)"""

_DECISION_FIELDS = [
    "event_id",
    "request_id",
    "timestamp",
    "customer_id",
    "decision_point",
    "customer_features",
    "context",
    "actions",
    "probabilities",
    "excluded",
    "action_id",
    "channel",
    "probability",
    "policy",
    "policy_version",
    "variant",
    "explored",
    "degraded",
    "reward_deadline",
    "shadow_policy",
    "shadow_policy_version",
    "shadow_action_id",
    "shadow_probability",
    "replica",
]
_INSERT_DECISION = (
    f"INSERT INTO decisions ({', '.join(_DECISION_FIELDS)}) "
    f"VALUES ({', '.join('?' * len(_DECISION_FIELDS))})"
)
REQUEST_TTL_SECONDS = 24 * 3600.0


def dumps(value: Any) -> str:
    """Compact JSON for the logged feature/context/action columns (orjson: several times
    faster than ``json`` on the hot path; a non-finite float, which request validation
    already rejects, would be written as ``null``)."""
    return orjson.dumps(value).decode()


@dataclass(frozen=True, slots=True)
class RewardOutcome:
    accepted: bool
    duplicate: bool


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


class EventLog:
    """One process's durable log (see the module docstring)."""

    def __init__(
        self,
        logs_dir: Path,
        *,
        flush_ms: float = 200.0,
        roll_seconds: float = 10.0,
        reward_mode: str = "first",
    ) -> None:
        self.logs_dir = Path(logs_dir)
        self.spool_dir = self.logs_dir / "spool"
        self.decisions_dir = self.logs_dir / "decisions"
        self.rewards_dir = self.logs_dir / "rewards"
        self.flush_seconds = flush_ms / 1000.0
        self.roll_seconds = roll_seconds
        self.reward_mode = reward_mode
        self.name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._lock = threading.Lock()  # our spool connection (the hot path)
        self._index_lock = threading.Lock()  # the shared reward index (other processes too)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conn: sqlite3.Connection | None = None
        self._index: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self.last_sync = time.time()
        self.last_roll = time.time()
        self._dirty_since: float | None = None

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> EventLog:
        """Recover orphaned spools, open ours, start the group-commit and roll threads."""
        for d in (self.spool_dir, self.decisions_dir, self.rewards_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.spool_dir / f"{self.name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.recover()
        self._conn = _connect(self.spool_dir / f"{self.name}.db")
        self._conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run off the hot path
        for ddl in (_DECISIONS_DDL, _REWARDS_DDL, _REQUESTS_DDL):
            self._conn.execute(ddl)
        self._index = _connect(self.logs_dir / "reward-index.db")
        self._index.execute(_INDEX_DDL)
        for target, period in (
            (self._sync_loop, self.flush_seconds),
            (self._roll_loop, self.roll_seconds),
        ):
            t = threading.Thread(
                target=target, args=(period,), daemon=True, name=f"eventlog-{target.__name__}"
            )
            t.start()
            self._threads.append(t)
        return self

    def close(self) -> None:
        """Stop the threads, roll everything to Parquet, delete our spool (SIGTERM path)."""
        if self._conn is None:
            return
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)
        self._threads.clear()
        self.roll()
        with self._lock:
            conn, self._conn = self._conn, None
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()
        if self._index is not None:
            self._index.close()
            self._index = None
        base = self.spool_dir / self.name
        for suffix in (".db", ".db-wal", ".db-shm"):
            Path(f"{base}{suffix}").unlink(missing_ok=True)
        if self._lock_fd is not None:
            Path(f"{base}.lock").unlink(missing_ok=True)
            os.close(self._lock_fd)
            self._lock_fd = None

    def recover(self) -> int:
        """Roll every spool whose owner is gone; return the number of rows recovered."""
        recovered = 0
        for lock_path in sorted(self.spool_dir.glob("*.lock")):
            name = lock_path.stem
            if name == self.name:
                continue
            fd = os.open(lock_path, os.O_RDWR)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live process owns it
                db = self.spool_dir / f"{name}.db"
                if db.exists():
                    recovered += self._roll_spool(db, name)
                for suffix in (".db", ".db-wal", ".db-shm"):
                    Path(f"{self.spool_dir / name}{suffix}").unlink(missing_ok=True)
                lock_path.unlink(missing_ok=True)
            finally:
                os.close(fd)
        if recovered:
            logger.warning("event log: recovered %d rows from crashed processes", recovered)
        return recovered

    def _roll_spool(self, db: Path, name: str) -> int:
        from serving.log_roll import DECISION_SCHEMA, REWARD_SCHEMA, roll_table

        conn = _connect(db)
        try:
            for ddl in (_DECISIONS_DDL, _REWARDS_DDL, _REQUESTS_DDL):
                conn.execute(ddl)
            n_dec, _ = roll_table(conn, "decisions", DECISION_SCHEMA, self.decisions_dir, name)
            n_rew, _ = roll_table(conn, "rewards", REWARD_SCHEMA, self.rewards_dir, name)
            return n_dec + n_rew
        finally:
            conn.close()

    # ------------------------------------------------------------------ writing
    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        conn = self._conn
        if conn is None:
            raise EventLogError("the event log is closed")
        try:
            with self._lock:
                conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise EventLogError(f"cannot write the event log: {exc}") from exc
        if self._dirty_since is None:
            self._dirty_since = time.time()

    def append_decision(self, row: dict[str, Any]) -> None:
        """Log one decision (keys: the decision columns but ``replica``) before answering."""
        row["replica"] = self.name
        self._write(_INSERT_DECISION, tuple(row.get(f) for f in _DECISION_FIELDS))

    def remember_request(self, request_id: str, response: str) -> None:
        self._write(
            "INSERT OR IGNORE INTO requests (request_id, response, timestamp) VALUES (?, ?, ?)",
            (request_id, response, time.time()),
        )

    def find_request(self, request_id: str) -> str | None:
        """The answer already given to ``request_id`` by this process, if any."""
        conn = self._conn
        if conn is None:
            return None
        with self._lock:
            row = conn.execute(
                "SELECT response FROM requests WHERE request_id = ?", (request_id,)
            ).fetchone()
        return row[0] if row else None

    def record_reward(self, event_id: str, reward: float, late: bool) -> RewardOutcome:
        """Log a reward; first one per event id wins (``sum`` mode: all count), shared by
        every replica. Late rewards are logged with ``late`` and never accepted."""
        now = time.time()
        duplicate = False
        if not late:
            index = self._index
            if index is None:
                raise EventLogError("the event log is closed")
            try:
                with self._index_lock:
                    cur = index.execute(
                        "INSERT INTO reward_index (event_id, reward, count, timestamp) "
                        "VALUES (?, ?, 1, ?) ON CONFLICT(event_id) DO UPDATE SET "
                        "count = count + 1, reward = reward + "
                        "(CASE WHEN ? = 'sum' THEN excluded.reward ELSE 0 END) RETURNING count",
                        (event_id, reward, now, self.reward_mode),
                    )
                    count = cur.fetchone()[0]
            except sqlite3.Error as exc:
                raise EventLogError(f"cannot write the reward index: {exc}") from exc
            duplicate = count > 1
        accepted = not late and (not duplicate or self.reward_mode == "sum")
        self._write(
            "INSERT INTO rewards (event_id, reward, timestamp, counted, duplicate, late, replica) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (event_id, reward, now, int(accepted), int(duplicate), int(late), self.name),
        )
        return RewardOutcome(accepted=accepted, duplicate=duplicate)

    # ------------------------------------------------------------------ durability
    def sync(self, conn: sqlite3.Connection | None = None) -> None:
        """Group commit: checkpoint (and so ``fsync``) the WAL now.

        Runs on its own connection: a WAL checkpoint does not block the writer."""
        if self._conn is None:
            return
        dirty = self._dirty_since
        own = conn is None
        conn = conn or _connect(self.spool_dir / f"{self.name}.db")
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            if own:
                conn.close()
        if dirty is not None and self._dirty_since == dirty:
            self._dirty_since = None
        self.last_sync = time.time()

    def roll(self) -> int:
        """Roll our spool into Parquet and delete the rolled rows; return rows rolled."""
        from serving.log_roll import DECISION_SCHEMA, REWARD_SCHEMA, roll_table

        conn = self._conn
        if conn is None:
            return 0
        reader = _connect(self.spool_dir / f"{self.name}.db")
        try:
            n_dec, last_dec = roll_table(
                reader, "decisions", DECISION_SCHEMA, self.decisions_dir, self.name
            )
            n_rew, last_rew = roll_table(
                reader, "rewards", REWARD_SCHEMA, self.rewards_dir, self.name
            )
        finally:
            reader.close()
        for table, last in (("decisions", last_dec), ("rewards", last_rew)):
            with self._lock:
                start = (conn.execute(f"SELECT min(rowid) FROM {table}").fetchone()[0] or 1) - 1
            while start < last:  # small chunks: the hot path waits at most one chunk
                start = min(last, start + 2000)
                with self._lock:
                    conn.execute(f"DELETE FROM {table} WHERE rowid <= ?", (start,))
        with self._lock:
            conn.execute(
                "DELETE FROM requests WHERE timestamp < ?", (time.time() - REQUEST_TTL_SECONDS,)
            )
        self.last_roll = time.time()
        return n_dec + n_rew

    def unsynced_seconds(self) -> float:
        """Age of the oldest row not yet group-committed (0 when all are on disk)."""
        dirty = self._dirty_since
        return 0.0 if dirty is None else max(0.0, time.time() - dirty)

    def _sync_loop(self, period: float) -> None:
        conn = _connect(self.spool_dir / f"{self.name}.db")
        try:
            while not self._stop.wait(period):
                try:
                    self.sync(conn)
                except Exception:  # keep committing; the next tick retries
                    logger.exception("event log: group commit failed")
        finally:
            conn.close()

    def _roll_loop(self, period: float) -> None:
        while not self._stop.wait(period):
            try:
                self.roll()
            except Exception:
                logger.exception("event log: roll to Parquet failed")

    # ------------------------------------------------------------------ erasure
    def erase_customer(self, customer_id: str) -> dict[str, int]:
        """Delete a customer's decisions (and rewards of those decisions) from our spool
        and from every Parquet part; return counts."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        from serving.log_roll import rewrite_without

        event_ids: set[str] = set()
        spool_rows = 0
        conn = self._conn
        if conn is not None:
            with self._lock:
                event_ids.update(
                    r[0]
                    for r in conn.execute(
                        "SELECT event_id FROM decisions WHERE customer_id = ?", (customer_id,)
                    )
                )
                spool_rows = conn.execute(
                    "DELETE FROM decisions WHERE customer_id = ?", (customer_id,)
                ).rowcount
        for path in sorted(self.decisions_dir.glob("part-*.parquet")):
            with contextlib.suppress(OSError):
                table = pq.read_table(path, columns=["event_id", "customer_id"])
                hits = table.filter(pc.equal(table["customer_id"], customer_id))
                event_ids.update(hits["event_id"].to_pylist())
        parquet_rows = rewrite_without(self.decisions_dir, "customer_id", [customer_id])
        reward_rows = rewrite_without(self.rewards_dir, "event_id", event_ids)
        if conn is not None and event_ids:
            with self._lock:
                for eid in event_ids:
                    reward_rows += conn.execute(
                        "DELETE FROM rewards WHERE event_id = ?", (eid,)
                    ).rowcount
        return {"decisions": spool_rows + parquet_rows, "rewards": reward_rows}
