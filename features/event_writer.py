"""The event writer behind ``POST /events``: validate, apply, make visible, push to Feast.

``FeatureStore.push`` of a one-row DataFrame costs about 7.5 ms, so one push per event
caps a process near 130 events/s. The writer instead:

1. validates the event (:func:`features.events.parse_event`) and computes the new full
   row of the view it changes from the customer's current row
   (:func:`features.events.apply_event`);
2. puts that row in the source's :class:`~features.overlay.Overlay`, so the very next
   read in this process sees it;
3. a background thread pushes every pending row each ``flush_interval`` (default 50 ms),
   one ``FeatureStore.push(<view>_push, rows, to=PushMode.ONLINE)`` per view, and drops
   rows from the overlay once pushed. Other processes see an event within one flush
   interval plus the push time.

``consent_changed`` is also pushed synchronously (write-through) before
:meth:`EventWriter.ingest` returns, so every process sees a consent change on its next
read; if that push fails the row stays pending and is retried by the background thread.

The queue is bounded: past ``max_pending`` rows waiting (the store is slow or down),
:meth:`EventWriter.ingest` waits up to ``block_timeout`` and then raises
:class:`~features.errors.EventBacklogFull` (HTTP 503).

Concurrency: updates are read-modify-write of a full view row, serialised within the
process; across processes the last push wins (a counter incremented by two processes
in the same flush interval may lose one increment; consent is a plain assignment).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from features.errors import EventBacklogFull
from features.events import Event, apply_event, parse_event
from features.schema import GROUPS
from features.source import FeatureValue

if TYPE_CHECKING:
    import pandas as pd

    from features.feast_source import FeastFeatureSource
    from features.overlay import PendingRow

log = logging.getLogger(__name__)
_PANDAS_DTYPE = {str: "object", int: "int64", float: "float64", bool: "bool"}
#: Row time over the previous one: Feast's Redis store skips a row not newer than the stored.
_MIN_STEP = 0.001


class EventWriter:
    """Applies events to one :class:`~features.feast_source.FeastFeatureSource`."""

    def __init__(
        self,
        source: FeastFeatureSource,
        *,
        flush_interval: float = 0.05,
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
        self._flush_lock = threading.Lock()
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
            pending = self.overlay.snapshot(event.customer_id)
            rows = pending if view in pending else self.source.rows(event.customer_id)
            current = rows.get(view)
            prev_ts = current[0] if current else None
            new_row = apply_event(event, current[1] if current else None)
            ts = event.timestamp if prev_ts is None else max(event.timestamp, prev_ts + _MIN_STEP)
            self.overlay.put(event.customer_id, view, ts, new_row)
        if event.type == "consent_changed" and self.consent_write_through:
            self.flush(only=(event.customer_id, view))
        return event

    def _wait_for_room(self) -> None:
        self._wake.set()
        with self._drained:
            if not self._drained.wait_for(lambda: len(self.overlay) < self.max_pending,
                                          timeout=self.block_timeout):
                raise EventBacklogFull(
                    f"{len(self.overlay)} event rows waiting for the feature store; retry later")

    # -- pushing -----------------------------------------------------------------------

    def flush(self, only: tuple[str, str] | None = None) -> int:
        """Push pending rows (all, or one customer's view) to Feast; returns rows pushed.
        A failed push leaves its rows pending (still served from the overlay)."""
        from feast.data_source import PushMode

        with self._flush_lock:
            if only is None:
                batch = self.overlay.pending()
            else:
                batch = [it for it in self.overlay.pending(only[0]) if it[1] == only[1]]
            by_view: dict[str, list[tuple[str, str, PendingRow]]] = {}
            for item in batch:
                by_view.setdefault(item[1], []).append(item)
            pushed = 0
            for view, items in by_view.items():
                try:
                    self.source.store.push(f"{view}_push", _frame(view, items), to=PushMode.ONLINE)
                except Exception:  # the store is down or locked: keep the rows, retry later
                    self.failed_flushes += 1
                    log.warning("push to %s failed; %d rows stay pending", view, len(items),
                                exc_info=True)
                    continue
                self.overlay.done(items)
                pushed += len(items)
            self.pushed_rows += pushed
        with self._drained:
            self._drained.notify_all()
        return pushed

    def erase(self, customer_id: str) -> int:
        """Drop one customer's pending rows (for erasure); waits out a flush in progress."""
        with self._flush_lock, self._apply_lock:
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
        """Stop the background thread and push what is pending."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if len(self.overlay):
            self.flush()

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _frame(view: str, items: list[tuple[str, str, PendingRow]]) -> pd.DataFrame:
    """A push DataFrame: ``customer_id``, every feature of the view, ``event_timestamp``."""
    import pandas as pd

    columns: dict[str, list[FeatureValue | datetime]] = {"customer_id": [c for c, _, _ in items]}
    for name in GROUPS[view]:
        columns[name] = [row.values[name] for _, _, row in items]
    columns["event_timestamp"] = [datetime.fromtimestamp(row.ts, tz=UTC)
                                  for _, _, row in items]
    frame = pd.DataFrame(columns)
    return frame.astype({name: _PANDAS_DTYPE[t] for name, t in GROUPS[view].items()})
