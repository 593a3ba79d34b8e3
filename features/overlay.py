"""Events accepted but not yet in Feast's online store, visible to this process's reads.

The event writer (:mod:`features.event_writer`) batches its writes; until a row is in the
online store, the overlay serves it. Each row is a *full* view row (every feature of
the view), so a read replaces the store's row of that view by the overlay's.

Ordering that keeps consent from ever going stale in this process: a read snapshots the
overlay *before* it reads the store, and the writer removes a row from the overlay only
*after* the write that carries it has committed. So a read either sees the pending row,
or starts after the row was removed and then reads the store that already holds it.
Staleness bound: none within the process (pending rows are served at once); other
processes see a row once it is written, within the writer's flush interval.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from features.source import FeatureValue


@dataclass(frozen=True)
class PendingRow:
    """A full view row waiting to be written; ``version`` grows with every change. Never
    mutated once made (a change replaces it), so it is handed out without copying."""

    ts: float
    values: dict[str, FeatureValue]
    version: int = 0
    #: features changed since the row was last written (only these are written)
    changed: frozenset[str] = frozenset()


@dataclass
class Overlay:
    """Pending rows by customer id and view, thread-safe."""

    _rows: dict[str, dict[str, PendingRow]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _count: int = 0
    _version: int = 0

    def snapshot(self, customer_id: str) -> dict[str, tuple[float, dict[str, FeatureValue]]]:
        """Copies of the pending rows of one customer (empty when none)."""
        if not self._rows:  # fast path, no lock: the common case
            return {}
        with self._lock:
            views = self._rows.get(customer_id)
            if not views:
                return {}
            return {view: (row.ts, dict(row.values)) for view, row in views.items()}

    def put(self, customer_id: str, view: str, ts: float, values: dict[str, FeatureValue],
            changed: frozenset[str] | None = None) -> None:
        """Set the pending full row of ``view`` for ``customer_id``; ``changed`` (default:
        every feature) adds to the features still to be written."""
        changed = frozenset(values) if changed is None else changed
        with self._lock:
            self._version += 1
            views = self._rows.setdefault(customer_id, {})
            previous = views.get(view)
            if previous is None:
                self._count += 1
            else:
                changed |= previous.changed
            views[view] = PendingRow(ts, dict(values), self._version, changed)

    def pending(self, customer_id: str | None = None,
                view: str | None = None) -> list[tuple[str, str, PendingRow]]:
        """Copies of the pending rows, all or of one customer and/or one view:
        ``(customer_id, view, row)``."""
        with self._lock:
            if customer_id is None:
                items = list(self._rows.items())
            else:
                items = [(customer_id, self._rows.get(customer_id, {}))]
            return [
                (cid, v, row)
                for cid, views in items
                for v, row in views.items()
                if view is None or v == view
            ]

    def done(self, flushed: list[tuple[str, str, PendingRow]]) -> None:
        """Drop rows that were written, unless they changed since (their newer version stays)."""
        with self._lock:
            for cid, view, row in flushed:
                views = self._rows.get(cid)
                current = views.get(view) if views else None
                if current is not None and current.version == row.version:
                    del views[view]
                    self._count -= 1
                    if not views:
                        del self._rows[cid]

    def erase(self, customer_id: str) -> int:
        """Forget one customer's pending rows; returns how many there were."""
        with self._lock:
            views = self._rows.pop(customer_id, {})
            self._count -= len(views)
            return len(views)

    def __len__(self) -> int:
        return self._count
