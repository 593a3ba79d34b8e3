"""The embedded timer store: one SQLite file (``$MAESTRO_HOME/timers.db``) in WAL mode,
shared by every process of the machine; each write is one ``BEGIN IMMEDIATE``
transaction, so a claim is atomic across processes."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Collection, Sequence
from pathlib import Path

from serving.errors import TimerStoreError
from serving.state.sqlite_tx import immediate, open_shared
from serving.state.timers import Timer

_SCHEMA = """
CREATE TABLE IF NOT EXISTS timers (
    id TEXT PRIMARY KEY, trigger TEXT NOT NULL, step INTEGER NOT NULL,
    customer TEXT NOT NULL, due REAL NOT NULL, created REAL NOT NULL,
    ready REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, token TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS timers_ready ON timers (ready);
CREATE INDEX IF NOT EXISTS timers_run ON timers (customer, trigger);
"""
_CLAIM = (
    "UPDATE timers SET ready = ?1, attempts = attempts + 1, token = ?2 WHERE id IN "
    "(SELECT id FROM timers WHERE ready <= ?3 ORDER BY ready LIMIT ?4) "
    "RETURNING id, trigger, step, customer, due, created, attempts, token"
)


class SQLiteTimerStore:
    """:class:`serving.state.timers.TimerStore` over one SQLite file (made with its
    directory when missing)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = open_shared(self.path, _SCHEMA, error=TimerStoreError, what="timer store")

    def _write(self, fn, *args):  # type: ignore[no-untyped-def]
        return immediate(self._db, self._lock, fn, *args, error=TimerStoreError,
                         what="timer store")

    def schedule(self, timers: Sequence[Timer]) -> int:
        if not timers:
            return 0
        first = timers[0]

        def run(db: sqlite3.Connection) -> int:
            replaced = db.execute(
                "DELETE FROM timers WHERE customer = ? AND trigger = ?",
                (first.customer_id, first.trigger),
            ).rowcount
            db.executemany(
                "INSERT INTO timers VALUES (?, ?, ?, ?, ?, ?, ?, 0, '')",
                [(t.timer_id, t.trigger, t.step, t.customer_id, t.due_at, t.created_at, t.due_at)
                 for t in timers],
            )
            return int(replaced)

        return int(self._write(run))

    def cancel(self, customer_id: str, triggers: Collection[str]) -> int:
        names = list(triggers)
        if not names:
            return 0
        marks = ",".join("?" * len(names))

        def run(db: sqlite3.Connection) -> int:
            return int(db.execute(
                f"DELETE FROM timers WHERE customer = ? AND trigger IN ({marks})",
                (customer_id, *names),
            ).rowcount)

        return int(self._write(run))

    def claim(self, now: float, replica: str, lease_seconds: float, limit: int) -> list[Timer]:
        token = f"{replica}@{uuid.uuid4().hex[:12]}"

        def run(db: sqlite3.Connection) -> list[Timer]:
            rows = db.execute(_CLAIM, (now + lease_seconds, token, now, limit)).fetchall()
            return [Timer(*row) for row in rows]

        timers: list[Timer] = self._write(run)
        return sorted(timers, key=lambda t: t.due_at)

    def done(self, timer: Timer) -> bool:
        def run(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "DELETE FROM timers WHERE id = ? AND token = ?", (timer.timer_id, timer.token)
            )
            return cur.rowcount == 1

        return bool(self._write(run))

    def pending(self) -> int:
        with self._lock:
            try:
                return int(self._db.execute("SELECT count(*) FROM timers").fetchone()[0])
            except sqlite3.Error as exc:
                raise TimerStoreError(f"timer store: {exc}") from exc

    def erase_customer(self, customer_id: str) -> int:
        def run(db: sqlite3.Connection) -> int:
            return int(db.execute("DELETE FROM timers WHERE customer = ?",
                                  (customer_id,)).rowcount)

        return int(self._write(run))

    def close(self) -> None:
        with self._lock:
            self._db.close()
