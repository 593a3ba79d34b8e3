"""One write transaction on a SQLite store shared by the processes of one machine."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
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
