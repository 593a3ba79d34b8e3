"""The event writer behind ``POST /events``: validate, apply, make visible, write to Feast.

``FeatureStore.push`` rebuilds its view of the registry on every call (on this machine
60–110 ms per call for Maestro's 6 views, whatever the row count; 7.5 ms was measured
with a smaller registry), so one push per event, or even one per view per flush, cannot
carry 2,000 events/s. The writer therefore does what ``push`` does after its registry
look-up, once per batch: it resolves each pushed view's :class:`~feast.FeatureView` from
the registry once, and hands the rows to Feast's provider (``online_write_batch``, the
call ``push`` → ``write_to_online_store`` → ``ingest_df`` ends in), with Feast's own
``ValueProto`` encoding and entity keys. Per event:

1. validate (:func:`features.events.parse_event`) and compute the view's new full row from
   the customer's current row (:func:`features.events.apply_event`);
2. put the row in the source's :class:`~features.overlay.Overlay`: the very next read in
   this process sees it;
3. every ``flush_interval`` (default 25 ms) a background thread writes, per view, every
   pending row's *changed* features in one batch, then drops the rows from the overlay.
   Other processes see an event within one flush interval plus the write time.

``consent_changed`` is also written synchronously (write-through, ~1 ms) before
:meth:`EventWriter.ingest` returns, so every process sees a consent change on its next
read; if that write fails the row stays pending and is retried by the background thread.
Writes are serialised by one lock (Feast's SQLite store shares one connection) in chunks
of 256 rows, each re-read from the overlay under that lock, so a write never replaces a
newer consent with an older one and a consent write waits for at most one chunk.

The queue is bounded: past ``max_pending`` rows waiting (the store is slow or down),
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
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from features import sqlite_writer
from features.errors import EventBacklogFull
from features.events import EVENT_VIEWS, Event, apply_event, parse_event
from features.feast_source import SqliteBackend, all_views
from features.schema import GROUPS
from features.sqlite_writer import SqliteRowWriter

if TYPE_CHECKING:
    from features.feast_source import FeastFeatureSource
    from features.overlay import PendingRow

log = logging.getLogger(__name__)
_ONEOF = {str: "string_val", int: "int64_val", float: "double_val", bool: "bool_val"}
#: Row time over the previous one: Feast's Redis store skips a row not newer than the stored.
_MIN_STEP = 0.001
#: Rows per write: the write lock is released between chunks (consent waits at most one).
_CHUNK = 256


class EventWriter:
    """Applies events to one :class:`~features.feast_source.FeastFeatureSource`."""

    def __init__(
        self,
        source: FeastFeatureSource,
        *,
        flush_interval: float = 0.025,
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
        # Feast's SQLite store writes through one shared connection: one write at a time
        self._write_lock = threading.Lock()
        self._provider = store._get_provider()
        self._config = store.config
        self._sqlite: SqliteRowWriter | None = None
        if sqlite_writer.supports(self._config.online_store) and isinstance(
                source.backend, SqliteBackend):
            # WAL (set by `maestro init`) + synchronous=NORMAL: a commit does not wait for
            # fsync (~9 ms here); the database stays consistent, and a power cut can lose
            # only the last writes (the events of one flush interval).
            self._sqlite = SqliteRowWriter(source.backend.db_path,
                                           {v.name: v.table for v in source.views})
        self._drained = threading.Condition()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pushed_rows = 0
        self.failed_flushes = 0
        if start:
            self.start()

    # -- ingestion ---------------------------------------------------------------------

    def ingest(self, payload: Mapping[str, Any] | Event) -> Event:
        """Validate and apply one event; its effect is visible to this process at once."""
        event = parse_event(payload)
        if len(self.overlay) >= self.max_pending:
            self._wait_for_room()
        view = event.view
        with self._apply_lock:
            current = self.source.row(event.customer_id, view)
            new_row = apply_event(event, current[1] if current else None)
            if current is None:
                ts, changed = event.timestamp, frozenset(new_row)
            else:
                ts = max(event.timestamp, current[0] + _MIN_STEP)
                changed = frozenset(k for k, v in new_row.items() if current[1].get(k) != v)
            if changed:
                self.overlay.put(event.customer_id, view, ts, new_row, changed)
        if changed and event.type == "consent_changed" and self.consent_write_through:
            self.flush(view=view, customer_id=event.customer_id)
        return event

    def _wait_for_room(self) -> None:
        self._wake.set()
        with self._drained:
            if not self._drained.wait_for(lambda: len(self.overlay) < self.max_pending,
                                          timeout=self.block_timeout):
                raise EventBacklogFull(
                    f"{len(self.overlay)} event rows waiting for the feature store; retry later")

    # -- writing -----------------------------------------------------------------------

    def flush(self, view: str | None = None, customer_id: str | None = None) -> int:
        """Write pending rows (all, or of one view and/or customer) to the online store;
        returns rows written. A failed write leaves its rows pending (still served)."""
        written = 0
        for name in [view] if view is not None else list(self._feature_views):
            items = self.overlay.pending(customer_id, name)
            for start in range(0, len(items), _CHUNK):
                try:
                    written += self._write_chunk(name, items[start:start + _CHUNK])
                except Exception:  # the store is down or locked: keep the rows, retry later
                    self.failed_flushes += 1
                    log.warning("write to %s failed; %d rows stay pending", name,
                                len(items) - start, exc_info=True)
                    break
        with self._drained:
            self.pushed_rows += written
            self._drained.notify_all()
        return written

    def _write_chunk(self, view: str, items: list[tuple[str, str, PendingRow]]) -> int:
        """Write a chunk under the write lock, re-reading it there: a row changed or erased
        since ``items`` was taken is written in its newest version, or not at all."""
        with self._write_lock:
            customers = dict.fromkeys(cid for cid, _, _ in items)
            fresh = [it for cid in customers for it in self.overlay.pending(cid, view)]
            if not fresh:
                return 0
            self._write(view, fresh)
            self.overlay.done(fresh)
            return len(fresh)

    def _write(self, view: str, items: list[tuple[str, str, PendingRow]]) -> None:
        """One batch through Feast's provider: entity keys, ``ValueProto`` values, times."""
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        if self._sqlite is not None:
            self._sqlite.write(view, items)
            return
        feature_view = self._feature_views[view]
        types = GROUPS[view]
        data = []
        for cid, _, row in items:
            values = {name: Value(**{_ONEOF[types[name]]: row.values[name]})
                      for name in row.changed}
            key = EntityKey(join_keys=["customer_id"], entity_values=[Value(string_val=cid)])
            data.append((key, values, datetime.fromtimestamp(row.ts, tz=UTC), None))
        self._provider.online_write_batch(self._config, feature_view, data, None)

    def erase(self, customer_id: str) -> int:
        """Drop one customer's pending rows (for erasure); waits out writes in progress."""
        with self._write_lock, self._apply_lock:
            return self.overlay.erase(customer_id)

    # -- background thread -------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="maestro-event-writer",
                                            daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            if len(self.overlay):
                try:
                    self.flush()
                except Exception:  # never let the writer thread die
                    log.exception("event flush failed")

    def close(self, timeout: float = 5.0) -> None:
        """Stop the background thread and write what is pending."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if len(self.overlay):
            self.flush()
        if self._sqlite is not None:
            with self._write_lock:
                self._sqlite.close()
                self._sqlite = None

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
