"""The sticky assignment table of :mod:`serving.experiments.variants`: (salt:scope, customer) →
variant, shared by every replica. Its store is a :class:`serving.state.ports.AssignmentStore`:
``$MAESTRO_HOME/experiments.db`` (SQLite WAL, one host's replicas) by default, PostgreSQL
(:mod:`serving.state.assignments_postgres`, every node) with ``MAESTRO_STATE_URL``."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from serving.state.ports import AssignmentStore

logger = logging.getLogger(__name__)
_CACHE_MAX = 200_000


class SqliteAssignmentStore:
    """The assignments in one SQLite file (WAL; the replicas of one host)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS assignments (scope TEXT NOT NULL, customer_id TEXT"
            " NOT NULL, variant TEXT NOT NULL, assigned_at REAL NOT NULL,"
            " PRIMARY KEY (scope, customer_id)) WITHOUT ROWID"
        )
        self._db = db

    def read(self, scope: str, customer_id: str) -> str | None:
        row = self._db.execute(
            "SELECT variant FROM assignments WHERE scope = ? AND customer_id = ?",
            (scope, customer_id),
        ).fetchone()
        return None if row is None else row[0]

    def insert_new(self, rows: Sequence[tuple[str, str, str, float]]) -> int:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            before = self._db.total_changes
            self._db.executemany("INSERT OR IGNORE INTO assignments VALUES (?, ?, ?, ?)", rows)
            written = self._db.total_changes - before
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return written

    def erase(self, customer_id: str) -> int:
        return self._db.execute(
            "DELETE FROM assignments WHERE customer_id = ?", (customer_id,)
        ).rowcount

    def close(self) -> None:
        self._db.close()


class AssignmentTable:
    """The sticky (salt, scope, customer) → variant table (see the module docstring).

    A known customer costs one indexed read per process (then the in-memory cache); a
    new one gets the hash's proposal at once, written by a background thread in one
    transaction every ``flush_seconds`` (``INSERT OR IGNORE``: the first replica to write
    wins, and a replica that lost reads the winner back into its cache). A crash loses
    at most the last ``flush_seconds`` of first assignments, which the hash re-derives
    identically unless the shares changed in between."""

    def __init__(
        self, store: AssignmentStore | Path | None, flush_seconds: float = 0.1
    ) -> None:
        if isinstance(store, (str, Path)):
            store = SqliteAssignmentStore(Path(store))
        self.store = store
        self.flush_seconds = flush_seconds
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], str] = {}
        self._pending: list[tuple[str, str, str, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def get_or_set(self, scope: str, customer_id: str, proposed: str) -> str:
        key = (scope, customer_id)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        with self._lock:
            row = None if self.store is None else self.store.read(scope, customer_id)
            value = row if row is not None else proposed
            if row is None and self.store is not None:
                self._pending.append((scope, customer_id, proposed, time.time()))
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._flush_loop, daemon=True, name="experiments-flush"
                    )
                    self._thread.start()
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[key] = value
        return value

    def flush(self) -> int:
        """Write the pending first assignments now; return how many were written."""
        with self._lock:
            pending, self._pending = self._pending, []
            if not pending or self.store is None:
                return 0
            written = self.store.insert_new(pending)
            if written < len(pending):  # another replica assigned some first: adopt theirs
                for scope, cid, _, _ in pending:
                    row = self.store.read(scope, cid)
                    if row is not None:
                        self._cache[(scope, cid)] = row
            return written

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except Exception as exc:  # keep serving; the next flush retries the hash
                logger.warning("experiments: cannot write assignments: %s", exc)

    def erase(self, customer_id: str) -> int:
        self.flush()
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if k[1] != customer_id}
            return 0 if self.store is None else self.store.erase(customer_id)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()
        with self._lock:
            if self.store is not None:
                self.store.close()
                self.store = None


def erase_assignments(home: Path, customer_id: str) -> int:
    """Delete ``customer_id``'s sticky assignments from the workspace's table (for
    ``maestro erase``; a running service also forgets them on ``DELETE /customers/{id}``)."""
    path = Path(home) / "experiments.db"
    if not path.exists():
        return 0
    table = AssignmentTable(path)
    try:
        return table.erase(customer_id)
    finally:
        table.close()
