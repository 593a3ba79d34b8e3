"""A SQLite store shared by the processes of one machine: its connection, one write
transaction."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from core.errors import MaestroError

T = TypeVar("T")


def immediate(
    db: sqlite3.Connection,
    lock: threading.Lock,
    fn: Callable[..., T],
    *args: object,
    error: type[MaestroError],
    what: str,
) -> T:
    """Run ``fn(db, *args)`` in one ``BEGIN IMMEDIATE`` transaction (the write lock taken at
    the start, so two processes never both read before either writes), rolled back when
    ``fn`` raises; a SQLite failure becomes ``error`` (``what: <problem>``)."""
    with lock:
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = fn(db, *args)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result
        except sqlite3.Error as exc:
            raise error(f"{what}: {exc}") from exc


def open_shared(
    path: Path, schema: str, *, error: type[MaestroError], what: str
) -> sqlite3.Connection:
    """A connection to the store at ``path`` for every thread of this process, in WAL mode
    (other processes of the machine read while one writes), its ``schema`` applied; a
    SQLite failure becomes ``error`` (``what PATH: <problem>``)."""
    try:
        db = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(schema)
    except sqlite3.Error as exc:
        raise error(f"{what} {path}: {exc}") from exc
    return db
