"""Events accepted but not yet in Feast's online store, visible to this process's reads.

The event writer (:mod:`features.event_writer`) batches its writes; until a row is in the
online store, the overlay serves it. An entry per customer and view is either

* a :class:`PendingRow`: the *full* view row (every feature of the view) after the
  customer's events, so a read replaces the store's row of that view by it; or
* a :class:`Deferred`: events accepted while there was no pending row, in arrival order,
  not yet applied because the view's current row has not been read from the store yet.
  The writer reads those base rows in bulk (one pipelined round trip per flush) instead
  of one read per event, and folds the events on them (:meth:`Overlay.resolve`).

A read of a customer with deferred events resolves them first (the ``resolver`` the
writer installs reads that customer's base rows), so every accepted event is visible to
the very next read in this process.

Ordering that keeps consent from ever going stale in this process: a read snapshots the
overlay *before* it reads the store, and the writer removes a row from the overlay only
*after* the write that carries it has committed. So a read either sees the pending row,
or starts after the row was removed and then reads the store that already holds it. A
deferred entry is only created when no row of that customer and view is pending, so its
base row, read after it was created, already holds every earlier event of this process.
Staleness bound: none within the process; other processes see a row once it is written,
within the writer's flush interval.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from features.source import FeatureValue

if TYPE_CHECKING:
    from features.events import Event

#: Resolves the deferred entries of one customer (reads base rows, folds the events).
Resolver = Callable[[str], None]
#: How many times a read re-resolves a customer whose events keep being deferred anew.
_RESOLVE_ROUNDS = 5


@dataclass(frozen=True)
class PendingRow:
    """A full view row waiting to be written; ``version`` grows with every change. Never
    mutated once made (a change replaces it), so it is handed out without copying."""

    ts: float
    values: dict[str, FeatureValue]
    version: int = 0
    #: features changed since the row was last written (only these are written)
    changed: frozenset[str] = frozenset()
    #: wall-clock time its oldest unwritten data was accepted (before its base row was
    #: read): an erasure at or after it makes the row unwritable (features.tombstones)
    since: float = field(default_factory=time.time)


@dataclass(eq=False)
class Deferred:
    """Events of one customer and view waiting for the view's base row, in arrival order.
    Compared by identity: a resolution applies only to the entry it read a base row for."""

    events: list[Event]
    #: when the first of ``events`` was accepted
    since: float = field(default_factory=time.time)


Entry = PendingRow | Deferred
Item = tuple[str, str, PendingRow]


@dataclass
class Overlay:
    """Pending rows and deferred events by customer id and view, thread-safe."""

    _rows: dict[str, dict[str, Entry]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _count: int = 0
    _version: int = 0
    _deferred: int = 0
    resolver: Resolver | None = None

    def snapshot(self, customer_id: str) -> dict[str, tuple[float, dict[str, FeatureValue]]]:
        """Copies of the pending rows of one customer (empty when none), after resolving
        its deferred events."""
        if not self._rows:  # fast path, no lock: the common case
            return {}
        for _ in range(_RESOLVE_ROUNDS):
            with self._lock:
                views = self._rows.get(customer_id)
                if not views:
                    return {}
                if self.resolver is None or not any(type(e) is Deferred for e in views.values()):
                    return {
                        view: (row.ts, dict(row.values))
                        for view, row in views.items()
                        if type(row) is PendingRow
                    }
            self.resolver(customer_id)  # outside the lock: it reads the store
        with self._lock:  # still deferred after every round (unreachable in practice)
            return {
                view: (row.ts, dict(row.values))
                for view, row in self._rows.get(customer_id, {}).items()
                if type(row) is PendingRow
            }

    def entry(self, customer_id: str, view: str) -> Entry | None:
        """The pending row or deferred events of one customer and view, or None."""
        with self._lock:
            views = self._rows.get(customer_id)
            return views.get(view) if views else None

    def put(
        self,
        customer_id: str,
        view: str,
        ts: float,
        values: dict[str, FeatureValue],
        changed: frozenset[str] | None = None,
    ) -> None:
        """Set the pending full row of ``view`` for ``customer_id``; ``changed`` (default:
        every feature) adds to the features still to be written. Replaces deferred events."""
        changed = frozenset(values) if changed is None else changed
        with self._lock:
            self._version += 1
            views = self._rows.setdefault(customer_id, {})
            previous = views.get(view)
            since = time.time() if previous is None else previous.since
            if previous is None:
                self._count += 1
            elif type(previous) is PendingRow:
                changed |= previous.changed
            else:
                self._deferred -= 1
            views[view] = PendingRow(ts, dict(values), self._version, changed, since)

    def defer(self, customer_id: str, view: str, event: Event) -> bool:
        """Append ``event`` to the deferred events of one customer and view (there must be
        no pending row: the caller applies events to a pending row directly). Returns True
        when the overlay was empty before (the writer may be idle)."""
        with self._lock:
            was_empty = self._count == 0
            views = self._rows.setdefault(customer_id, {})
            entry = views.get(view)
            if entry is None:
                views[view] = Deferred([event])
                self._count += 1
                self._deferred += 1
            elif type(entry) is Deferred:
                entry.events.append(event)
            else:
                raise ValueError(f"{customer_id}/{view} has a pending row: apply to it")
            return was_empty

    def deferred(
        self, keys: Iterable[tuple[str, str]] | None = None
    ) -> list[tuple[str, str, Deferred]]:
        """Deferred entries, all or of the given ``(customer_id, view)`` keys."""
        with self._lock:
            if not self._deferred:
                return []
            if keys is None:
                return [
                    (cid, v, e)
                    for cid, views in self._rows.items()
                    for v, e in views.items()
                    if type(e) is Deferred
                ]
            out = []
            for cid, v in keys:
                e = self._rows.get(cid, {}).get(v)
                if type(e) is Deferred:
                    out.append((cid, v, e))
            return out

    def resolve(
        self,
        customer_id: str,
        view: str,
        entry: Deferred,
        row: tuple[float, dict[str, FeatureValue], frozenset[str]] | None,
    ) -> bool:
        """Replace ``entry`` (if it is still the customer's entry of ``view``) by the row
        its events fold to, or drop it when they change nothing. Returns whether it was."""
        with self._lock:
            views = self._rows.get(customer_id)
            if views is None or views.get(view) is not entry:
                return False
            self._deferred -= 1
            if row is None:
                del views[view]
                self._count -= 1
                if not views:
                    del self._rows[customer_id]
            else:
                self._version += 1
                views[view] = PendingRow(row[0], row[1], self._version, row[2], entry.since)
            return True

    def keys(
        self, customer_id: str | None = None, view: str | None = None
    ) -> list[tuple[str, str]]:
        """``(customer_id, view)`` of every entry (pending or deferred), oldest customer
        first; all, or of one customer and/or one view."""
        with self._lock:
            if customer_id is None:
                items = list(self._rows.items())
            else:
                items = [(customer_id, self._rows.get(customer_id, {}))]
            return [(cid, v) for cid, views in items for v in views if view is None or v == view]

    def pending(
        self,
        customer_id: str | None = None,
        view: str | None = None,
        keys: Iterable[tuple[str, str]] | None = None,
    ) -> list[Item]:
        """The pending rows (not deferred events): all, of one customer and/or one view,
        or of the given ``(customer_id, view)`` keys: ``(customer_id, view, row)``."""
        with self._lock:
            if keys is not None:
                found = ((cid, v, self._rows.get(cid, {}).get(v)) for cid, v in keys)
                return [(cid, v, e) for cid, v, e in found if type(e) is PendingRow]
            if customer_id is None:
                items = list(self._rows.items())
            else:
                items = [(customer_id, self._rows.get(customer_id, {}))]
            return [
                (cid, v, row)
                for cid, views in items
                for v, row in views.items()
                if (view is None or v == view) and type(row) is PendingRow
            ]

    def done(self, flushed: list[Item]) -> None:
        """Drop rows that were written, unless they changed since (their newer version stays)."""
        with self._lock:
            for cid, view, row in flushed:
                views = self._rows.get(cid)
                current = views.get(view) if views else None
                if current is not None and current is row:
                    del views[view]
                    self._count -= 1
                    if not views:
                        del self._rows[cid]

    def erase(self, customer_id: str) -> int:
        """Forget one customer's pending rows and deferred events; returns how many
        entries there were."""
        with self._lock:
            views = self._rows.pop(customer_id, {})
            self._count -= len(views)
            self._deferred -= sum(1 for e in views.values() if type(e) is Deferred)
            return len(views)

    def __len__(self) -> int:
        return self._count
