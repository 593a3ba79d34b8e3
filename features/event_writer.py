"""The event writer behind ``POST /events``: validate, apply, make visible, write to Feast.

``FeatureStore.push`` rebuilds its view of the registry on every call (tens of
milliseconds for Maestro's 6 views, whatever the row count: BENCHMARKS.md, "Feature
store: notes"), so one push per event,
or even one per view per flush, cannot carry 2,000 events/s. And reading each event's
current view row from the store at ingest time (one Redis round trip per event) held
Redis ingestion far below that rate on a loaded machine. So :meth:`EventWriter.ingest`
does no I/O for most events:

1. validate (:func:`features.events.parse_event`);
2. if the customer's view row is pending in the source's :class:`~features.overlay.
   Overlay`, apply the event to it (:func:`features.events.fold_events`); otherwise
   *defer* it there (events of one customer and view queue in arrival order);
3. the background thread's flush reads the base rows of every deferred entry in bulk
   (:mod:`features.feast.row_io`: one Redis pipeline, or one SQLite ``IN (…)`` per view), folds
   the events on them in order, and writes every pending row's *changed* features in one
   batch (Redis: one pipeline in Feast's format; SQLite: :mod:`features.feast.sqlite_writer`,
   one transaction for every view; other stores: Feast's provider ``online_write_batch``),
   then drops the rows from the overlay.

Visibility: a read in this process resolves the customer's deferred events first (one
read of its base rows), so an event is visible to the very next read here. Other
processes see it once written: the thread flushes ``flush_interval`` (default 10 ms)
after the first event reaches an empty overlay, and then every ``flush_interval`` from
the start of the previous flush, at once when the previous flush took longer (backlog).
``consent_changed`` is written synchronously (write-through) before
:meth:`EventWriter.ingest` returns, so every process sees a consent change on its next
read; if that write fails the row stays pending and is retried by the background thread.
Writes are serialised by one lock in chunks of 256 entries, each resolved and re-read
from the overlay under that lock, so a write never replaces a newer consent with an
older one and a consent write waits for at most one chunk.

The queue is bounded: past ``max_pending`` entries waiting (the store is slow or down),
:meth:`EventWriter.ingest` waits up to ``block_timeout`` and then raises
:class:`~features.errors.EventBacklogFull` (HTTP 503).

Concurrency: updates are read-modify-write of a view row, serialised within the process;
across processes the last write of a feature wins (a counter incremented by two processes
within one flush interval may lose one increment; consent is a plain assignment).
A view's age (for TTL) is the time of its latest write.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from features.errors import EventBacklogFull
from features.events import EVENT_VIEWS, Event, fold_events, parse_event
from features.feast import sqlite_writer
from features.feast.internals import write_through_provider
from features.feast.redis_backend import RedisBackend
from features.feast.row_format import entity_key_bytes
from features.feast.row_io import RedisRows, SqliteRows
from features.feast.sqlite_backend import SqliteBackend
from features.feast.sqlite_writer import SqliteRowWriter
from features.feast.views import all_views
from features.overlay import PendingRow
from features.schema import GROUPS

if TYPE_CHECKING:
    from features.feast.source import FeastFeatureSource
    from features.overlay import Item

log = logging.getLogger(__name__)
#: Overlay entries per write: the write lock is released between chunks.
_CHUNK = 256


class EventWriter:
    """Applies events to one :class:`~features.feast.source.FeastFeatureSource`."""

    def __init__(
        self,
        source: FeastFeatureSource,
        *,
        flush_interval: float = 0.01,
        max_pending: int = 50_000,
        block_timeout: float = 1.0,
        consent_write_through: bool = True,
        start: bool = True,
    ) -> None:
        if not 0 < flush_interval <= 1.0:
            raise ValueError("flush_interval must be in (0, 1] seconds")
        if max_pending < 1:
            raise ValueError("max_pending must be >= 1")
        self.source = source
        self.overlay = source.overlay
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self.block_timeout = block_timeout
        self.consent_write_through = consent_write_through
        self._apply_lock = threading.Lock()
        store = source.store
        views = {v.name: v for v in all_views(store)}
        pushed = sorted(set(EVENT_VIEWS.values()))
        self._feature_views = {name: views[name] for name in pushed}  # resolved once
        # one write at a time (Feast's SQLite store shares one connection; chunks re-read)
        self._write_lock = threading.Lock()
        self._store = store
        self._config = store.config
        self._open_writers(source)
        self.overlay.resolver = self._resolve_customer
        self._drained = threading.Condition()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pushed_rows = 0
        self.failed_flushes = 0
        #: pending rows not written because their customer was erased meanwhile
        self.dropped_erased = 0
        self.flushes = 0
        if start:
            self.start()

    def _open_writers(self, source: FeastFeatureSource) -> None:
        """Choose how this writer reads base rows in bulk and writes rows, by the source's
        online store: SQLite rows and writer, Redis rows, or Feast's provider."""
        online = self._config.online_store
        backend = source.backend
        self._sqlite: SqliteRowWriter | None = None
        self._redis: RedisRows | None = None
        self._redis_writes = False
        self._bulk: SqliteRows | RedisRows
        if isinstance(backend, SqliteBackend):
            tables = {v.name: v.table for v in source.views}
            self._bulk = SqliteRows(backend.db_path, tables)
            if sqlite_writer.supports(online):
                # WAL (set by `maestro init`) + synchronous=NORMAL: a commit does not wait
                # for fsync (milliseconds per commit); the database stays consistent, and a
                # power cut can lose only the last writes (the events of one flush interval).
                self._sqlite = SqliteRowWriter(backend.db_path, tables)
        elif isinstance(backend, RedisBackend):
            self._bulk = self._redis = RedisRows(backend, getattr(online, "key_ttl_seconds", None))
            # cluster/sentinel or versioned view names: written through Feast's provider
            versioned = self._config.registry.enable_online_feature_view_versioning
            self._redis_writes = getattr(online, "redis_type", "redis") == "redis" and not versioned
        else:
            raise TypeError(f"unsupported online store backend {type(backend).__name__}")

    # -- ingestion ---------------------------------------------------------------------

    def ingest(self, payload: Mapping[str, Any] | Event) -> Event:
        """Validate and apply one event; its effect is visible to this process at once."""
        event = parse_event(payload)
        if len(self.overlay) >= self.max_pending:
            self._wait_for_room()
        cid, view = event.customer_id, event.view
        with self._apply_lock:
            entry = self.overlay.entry(cid, view)
            if type(entry) is PendingRow:
                folded = fold_events([event], (entry.ts, entry.values))
                if folded is not None:
                    self.overlay.put(cid, view, *folded)
                wake = False
            else:
                wake = self.overlay.defer(cid, view, event)
        if wake:
            self._wake.set()
        if event.type == "consent_changed" and self.consent_write_through:
            self.flush(view=view, customer_id=cid)
        return event

    def _wait_for_room(self) -> None:
        self._wake.set()
        with self._drained:
            if not self._drained.wait_for(
                lambda: len(self.overlay) < self.max_pending, timeout=self.block_timeout
            ):
                raise EventBacklogFull(
                    f"{len(self.overlay)} event rows waiting for the feature store; retry later"
                )

    # -- resolving deferred events -------------------------------------------------------

    def _resolve(self, keys: Sequence[tuple[str, str]], bulk: bool) -> None:
        """Fold the deferred events of ``keys`` on their views' current rows, read from the
        store (in bulk, or one customer through the source's backend)."""
        deferred = self.overlay.deferred(keys)
        if not deferred:
            return
        wanted = [(cid, view) for cid, view, _ in deferred]
        if bulk:
            bases = self._bulk.read_many(wanted)
        else:
            bases = {}
            for cid, view in wanted:
                row = self.source.backend.read(entity_key_bytes(cid), view).get(view)
                if row is not None:
                    bases[(cid, view)] = row
        with self._apply_lock:  # events are appended under this lock: fold them all
            for cid, view, entry in deferred:
                folded = fold_events(entry.events, bases.get((cid, view)))
                self.overlay.resolve(cid, view, entry, folded)

    def _resolve_customer(self, customer_id: str) -> None:
        """The overlay's resolver: a read of ``customer_id`` needs its deferred events."""
        self._resolve(self.overlay.keys(customer_id), bulk=False)

    # -- writing -----------------------------------------------------------------------

    def flush(self, view: str | None = None, customer_id: str | None = None) -> int:
        """Write pending rows and deferred events (all, or of one view and/or customer) to
        the online store; returns rows written. A failed write leaves its rows pending
        (still served)."""
        keys = self.overlay.keys(customer_id, view)
        written = 0
        for start in range(0, len(keys), _CHUNK):
            try:
                written += self._flush_chunk(keys[start : start + _CHUNK])
            except Exception:  # the store is down or locked: keep the rows, retry later
                self.failed_flushes += 1
                log.warning(
                    "event write failed; %d entries stay pending", len(keys) - start, exc_info=True
                )
                break
        with self._drained:
            self.pushed_rows += written
            self._drained.notify_all()
        return written

    def _flush_chunk(self, keys: list[tuple[str, str]]) -> int:
        """Resolve and write a chunk under the write lock, re-reading it there: a row
        changed or erased since ``keys`` was taken is written in its newest version, or
        not at all."""
        with self._write_lock:
            self._resolve(keys, bulk=True)
            fresh = self.overlay.pending(keys=keys)
            if not fresh:
                return 0
            self._write(fresh)
            self.overlay.done(fresh)
            return len(fresh)

    def _write(self, items: list[Item]) -> None:
        """Write ``items``; rows of customers erased meanwhile by another process are
        dropped by the row writers (:mod:`features.tombstones`) and counted."""
        if self._redis is not None and self._redis_writes:
            self.dropped_erased += self._redis.write(items)
            return
        by_view: dict[str, list[Item]] = {}
        for item in items:
            by_view.setdefault(item[1], []).append(item)
        if self._sqlite is not None:  # every view in one transaction
            self.dropped_erased += self._sqlite.write_many(by_view)
            return
        for view, rows in by_view.items():
            self._write_feast(view, rows)

    def _write_feast(self, view: str, items: list[Item]) -> None:
        """One batch of a view's changed values through Feast's provider."""
        rows = [
            (cid, {name: row.values[name] for name in row.changed}, row.ts) for cid, _, row in items
        ]
        write_through_provider(self._store, self._feature_views[view], GROUPS[view], rows)

    def erase(self, customer_id: str) -> int:
        """Drop one customer's pending rows and deferred events (for erasure); waits out
        writes in progress."""
        with self._write_lock, self._apply_lock:
            return self.overlay.erase(customer_id)

    # -- background thread -------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="maestro-event-writer", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        """Flush ``flush_interval`` after the overlay stops being empty, then every
        ``flush_interval`` from the previous flush's start (at once after a long flush).
        While writes fail (store down) the retry delay doubles, up to one second."""
        due: float | None = None
        retry = self.flush_interval
        while not self._stop.is_set():
            if not len(self.overlay):
                due = None
                self._wake.wait(0.5)  # set by the event that makes the overlay non-empty
                self._wake.clear()
                continue
            now = time.monotonic()
            if due is None:
                due = now + self.flush_interval
            if due > now and self._wake.wait(due - now):
                self._wake.clear()  # backlog full or closing: flush now
            failed = self.failed_flushes
            started = time.monotonic()
            try:
                self.flush()
                self.flushes += 1
            except Exception:  # never let the writer thread die
                log.exception("event flush failed")
                self.failed_flushes += 1
            retry = min(2 * retry, 1.0) if self.failed_flushes > failed else self.flush_interval
            due = started + retry

    def close(self, timeout: float = 5.0) -> None:
        """Stop the background thread and write what is pending."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if len(self.overlay):
            self.flush()
        with self._write_lock:
            if self._sqlite is not None:
                self._sqlite.close()
                self._sqlite = None
            self._bulk.close()

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
