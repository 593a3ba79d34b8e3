"""An in-process cache of Feast's SQLite online rows, kept exact by a change journal.

Reading Feast's online tables costs about as much as the decision path's whole budget
over an empty endpoint (0.3 ms p50; the read's cost: BENCHMARKS.md, "Serving", stage
table). So each process keeps the rows it
has read, and every read first asks SQLite what changed since:

1. ``PRAGMA data_version`` on the reader's connection (about a microsecond): unchanged
   means no other connection committed anything, so every cached row is current.
2. When it changed, the journal table ``maestro_feature_changes`` says which customers:
   every Maestro write to the online store — event rows (:mod:`features.feast.sqlite_writer`),
   consent write-through, erasure — inserts one journal row per customer **in the same
   transaction** as the feature rows, so a reader that sees the rows sees the journal
   entry too. Those customers are dropped from the cache and re-read on demand.
3. A commit that left no journal entry (``feast materialize``, ``maestro init``, any other
   tool writing to Feast directly) empties the whole cache.

Staleness bound: a change written through Maestro (``POST /events``, ``DELETE
/customers/{id}``, ``maestro init``) is seen by the next read in every process — consent
included. The only gap is a direct write by another tool landing between two Maestro
writes, before this process's next read; such a change is bounded by ``max_age`` (an
entry older than that is re-read; default 60 s, ``MAESTRO_FEATURE_CACHE_SECONDS``).
``capacity`` bounds memory (oldest entries are evicted first).

This is the read-through cache pattern with invalidation from a change log (the
"transactional outbox"); SQLite's ``data_version`` pragma makes the no-change case free.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

JOURNAL_TABLE = "maestro_feature_changes"
_DDL = (
    f'CREATE TABLE IF NOT EXISTS "{JOURNAL_TABLE}" '
    "(seq INTEGER PRIMARY KEY AUTOINCREMENT, entity_key BLOB NOT NULL, changed_at REAL)"
)
_INSERT = f'INSERT INTO "{JOURNAL_TABLE}" (entity_key, changed_at) VALUES (?, ?)'
_SINCE = f'SELECT seq, entity_key FROM "{JOURNAL_TABLE}" WHERE seq > ? ORDER BY seq'
_LAST = f'SELECT coalesce(max(seq), 0) FROM "{JOURNAL_TABLE}"'
#: journal rows kept (older ones are pruned; a reader that fell further behind clears all)
JOURNAL_KEEP = 100_000
_PRUNE_EVERY = 1_000


def ensure_journal(conn: sqlite3.Connection) -> None:
    """Create the journal table if it is missing (idempotent)."""
    conn.execute(_DDL)


_inserted = 0


def record_changes(conn: sqlite3.Connection, keys: Iterable[bytes]) -> None:
    """Journal a change of each entity key, inside the caller's open transaction."""
    global _inserted
    now = time.time()
    rows = [(k, now) for k in dict.fromkeys(keys)]
    if not rows:
        return
    ensure_journal(conn)
    conn.executemany(_INSERT, rows)
    _inserted += len(rows)
    if _inserted >= _PRUNE_EVERY:
        _inserted = 0
        conn.execute(f'DELETE FROM "{JOURNAL_TABLE}" WHERE seq <= ({_LAST}) - ?', (JOURNAL_KEEP,))


def create_journal(db_path: Path) -> bool:
    """Create the journal in the database at ``db_path``; False if it cannot be written."""
    try:
        conn = sqlite3.connect(db_path, timeout=5.0)
    except sqlite3.Error:
        return False
    try:
        with conn:
            ensure_journal(conn)
        return True
    except sqlite3.Error:
        return False
    finally:
        conn.close()


#: SQLite's WAL-index header: two copies of the 48-byte ``WalIndexHdr`` at the start of
#: the ``-shm`` file (https://sqlite.org/walformat.html, "the wal-index header")
WAL_INDEX_HEADER = 96


class WalWatch:
    """The WAL-index header of a database in WAL mode, memory-mapped read-only.

    Every commit rewrites it (``iChange``, a counter of write transactions, ``mxFrame``,
    the checksums, and the salts when the WAL restarts), so while its bytes are unchanged
    nothing was committed and ``PRAGMA data_version`` — a statement, and file-lock system
    calls, on every read — can be skipped. A torn read mid-update only looks like a
    change. The mapping must be closed before the connection that keeps the ``-shm``
    open: SQLite reinitialises (truncates) it only when no connection has it open."""

    __slots__ = ("_fd", "_map")

    def __init__(self, shm_path: str) -> None:
        import mmap

        self._fd = os.open(shm_path, os.O_RDONLY)
        try:
            self._map = mmap.mmap(self._fd, WAL_INDEX_HEADER, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            os.close(self._fd)
            raise

    @classmethod
    def open(cls, conn: sqlite3.Connection, db_path: str) -> WalWatch | None:
        """A watch for ``conn``'s database, or ``None`` (not WAL mode, no ``-shm`` yet)."""
        try:
            if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                return None
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()  # maps the -shm
            shm = db_path + "-shm"
            if os.path.getsize(shm) < WAL_INDEX_HEADER:
                return None
            return cls(shm)
        except (OSError, ValueError, sqlite3.Error):
            return None

    def header(self) -> bytes:
        return self._map[:WAL_INDEX_HEADER]

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)


class RowCache:
    """Rows of recently read customers, invalidated through the journal (see module doc).

    ``sync(conn, state)`` runs before every read on that connection; ``get``/``put`` are
    the cache proper. Thread-safe; a fill that raced with an invalidation is dropped.
    """

    def __init__(
        self,
        capacity: int = 200_000,
        max_age: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = capacity
        self.max_age = max_age
        self.clock = clock
        self._rows: dict[bytes, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self._seq = -1  # last journal entry applied; -1: not read yet
        self._generation = 0  # grows with every invalidation
        self.hits = 0
        self.misses = 0
        self.invalidations = 0
        self.clears = 0

    @property
    def generation(self) -> int:
        return self._generation

    def sync(self, conn: sqlite3.Connection, state: dict[str, Any]) -> None:
        """Apply what was committed since this connection last looked. ``state`` is the
        connection's own memo (``data_version`` is per connection), with its
        :class:`WalWatch` under ``"wal"`` when it has one. Raises
        ``sqlite3.Error`` when the store cannot be read (the caller maps it)."""
        watch = state.get("wal")
        header = None
        if watch is not None:  # unchanged WAL-index header: nothing was committed
            header = watch.header()
            if header == state.get("wal_header"):
                return
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if version == state.get("version"):
            state["wal_header"] = header
            return
        with self._lock:
            if self._seq < 0:  # first look: start from the journal's end, cache empty
                self._seq = conn.execute(_LAST).fetchone()[0]
                self._clear()
            else:
                changes = conn.execute(_SINCE, (self._seq,)).fetchall()
                if not changes:
                    if state.get("seq") == self._seq:  # a commit without a journal entry
                        self._clear()
                elif changes[0][0] != self._seq + 1:  # pruned past us: we cannot know
                    self._clear()
                    self._seq = changes[-1][0]
                else:
                    self._generation += 1
                    for seq, key in changes:
                        if self._rows.pop(key, None) is not None:
                            self.invalidations += 1
                        self._seq = seq
            state["version"] = version
            state["seq"] = self._seq
            state["wal_header"] = header  # read before the pragma: a later commit shows

    def get(self, key: bytes) -> Any | None:
        entry = self._rows.get(key)
        if entry is None or self.clock() - entry[0] > self.max_age:
            self.misses += 1
            return None
        self.hits += 1
        return entry[1]

    def put(self, key: bytes, rows: Any, generation: int) -> None:
        """Keep ``rows`` read while the cache was at ``generation`` (dropped if it moved)."""
        if self.capacity <= 0:
            return
        with self._lock:
            if generation != self._generation:
                return
            self._rows.pop(key, None)
            self._rows[key] = (self.clock(), rows)
            while len(self._rows) > self.capacity:
                del self._rows[next(iter(self._rows))]

    def clear(self) -> None:
        with self._lock:
            self._clear()
            self._seq = -1

    def _clear(self) -> None:
        self._generation += 1
        self._rows.clear()
        self.clears += 1

    def __len__(self) -> int:
        return len(self._rows)

    def stats(self) -> dict[str, int]:
        return {
            "entries": len(self._rows),
            "hits": self.hits,
            "misses": self.misses,
            "invalidations": self.invalidations,
            "clears": self.clears,
        }
