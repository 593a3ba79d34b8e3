"""Reads of Feast's SQLite online tables for :class:`~features.feast.source.FeastFeatureSource`.

One prepared ``UNION ALL`` statement over the view tables, keyed by Feast's serialised
entity key, decodes Feast's ``value_text`` column by the schema's type. Rows are kept in
a :class:`~features.cache.RowCache` that every read first brings up to date from
SQLite's ``data_version`` and Maestro's change journal (see :mod:`features.cache` for
the exact bound). SQLite's busy timeout is ``timeout`` seconds; past it, or when the file
is missing, :class:`~features.errors.FeatureStoreUnavailable` is raised.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

from features.cache import RowCache, WalWatch, create_journal
from features.errors import FeatureStoreUnavailable
from features.feast.row_format import FROM_TEXT, Rows, proto_decoder, sqlite_ts
from features.feast.views import ViewSpec
from features.source import FeatureValue


class SqliteBackend:
    """Reads Feast's SQLite online tables with one prepared ``UNION ALL`` statement,
    through a :class:`~features.cache.RowCache` when one is given (see that module for
    its staleness bound)."""

    def __init__(
        self, db_path: Path, views: list[ViewSpec], timeout: float, cache: RowCache | None = None
    ) -> None:
        self.db_path = db_path
        self._db_str = os.fspath(db_path)  # stat() of a str skips Path.__fspath__ per read
        self.timeout = timeout
        self.cache = cache
        if cache is not None and not create_journal(db_path):
            self.cache = None  # a store we cannot write to: no journal, so no cache
        self._views = [v.name for v in views]
        selects = [
            f'SELECT {i}, feature_name, value_text, value, event_ts FROM "{v.table}" '
            "WHERE entity_key = ?1"
            for i, v in enumerate(views)
        ]
        self._sql = " UNION ALL ".join(selects)
        self._sql_view = {v.name: sql for v, sql in zip(views, selects, strict=True)}
        self._local = threading.local()
        types = {f: t for v in views for f, t in v.types.items()}
        self._text = {f: FROM_TEXT[t] for f, t in types.items()}
        self._proto = proto_decoder(types)

    def _conn(self) -> sqlite3.Connection:
        try:
            ino = os.stat(self._db_str).st_ino
        except OSError as exc:
            raise FeatureStoreUnavailable(f"online store {self.db_path} is missing") from exc
        cached = getattr(self._local, "conn", None)
        if cached is not None and cached[1] == ino:
            return cached[0]
        if cached is not None:  # the file was replaced (re-init): reopen
            self._close_local()
            if self.cache is not None:  # a journal missing there is created on first use
                self.cache.clear()
        try:
            conn = sqlite3.connect(
                f"file:{self.db_path}?mode=ro",
                uri=True,
                timeout=self.timeout,
                check_same_thread=False,
                cached_statements=16,
            )
        except sqlite3.Error as exc:
            raise FeatureStoreUnavailable(
                f"cannot open online store {self.db_path}: {exc}"
            ) from exc
        self._local.conn = (conn, ino)
        # the WAL-index header skips the data_version check while nothing was committed
        self._local.state = {
            "wal": WalWatch.open(conn, self._db_str) if self.cache is not None else None
        }
        return conn

    def _close_local(self) -> None:
        """Close this thread's connection (its WAL watch first: see WalWatch)."""
        cached = getattr(self._local, "conn", None)
        state = getattr(self._local, "state", None) or {}
        if state.get("wal") is not None:
            state["wal"].close()
            state["wal"] = None
        if cached is not None:
            cached[0].close()
            self._local.conn = None

    def read(self, key: bytes, view: str | None = None) -> Rows:
        """Every view's row (or one view's): from the cache when it holds the customer and
        nothing changed them since, else from the store. Callers must not mutate it."""
        conn = self._conn()
        cache = self.cache
        if cache is None:
            return self._read_store(conn, key, view)
        try:
            try:
                cache.sync(conn, self._local.state)
            except sqlite3.OperationalError as exc:
                # a store restored from a copy without its journal: recreate it, start over
                if "no such table" not in str(exc) or not create_journal(self.db_path):
                    raise
                cache.clear()
                self._local.state = {"wal": self._local.state.get("wal")}
                cache.sync(conn, self._local.state)
        except sqlite3.Error as exc:
            self.close()
            raise FeatureStoreUnavailable(f"online store unreadable: {exc}") from exc
        rows = cache.get(key)
        if rows is None:
            generation = cache.generation
            rows = self._read_store(conn, key, None)
            cache.put(key, rows, generation)
        if view is None:
            return rows
        return {view: rows[view]} if view in rows else {}

    def _read_store(self, conn: sqlite3.Connection, key: bytes, view: str | None) -> Rows:
        """Feast's ``value_text`` column (``str()`` of the value, exact for these types) is
        decoded by type; the ``ValueProto`` is parsed only where it is NULL."""
        sql = self._sql if view is None else self._sql_view[view]
        try:
            rows = conn.execute(sql, (key,)).fetchall()
        except sqlite3.Error as exc:
            self.close()
            raise FeatureStoreUnavailable(f"online store unreadable: {exc}") from exc
        text = self._text
        last = -1
        values: dict[str, FeatureValue] = {}
        newest: dict[int, Any] = {}  # a view's age is its latest write (rows may differ)
        found: dict[int, dict[str, FeatureValue]] = {}
        for idx, name, value_text, blob, ts in rows:
            if idx != last:
                values = found[idx] = {}
                newest[idx] = ts
                last = idx
            elif ts > newest[idx]:
                newest[idx] = ts
            convert = text.get(name)
            if convert is None:
                continue
            if value_text is not None:
                values[name] = convert(value_text)
            elif blob is not None and (decoded := self._proto(name, blob)) is not None:
                values[name] = decoded
        return {self._views[i]: (sqlite_ts(newest[i]), v) for i, v in found.items()}

    def ping(self) -> bool:
        try:
            self._read_store(self._conn(), b"", None)
        except FeatureStoreUnavailable:
            return False
        return True

    def close(self) -> None:
        self._close_local()
