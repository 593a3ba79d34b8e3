"""Decisions awaiting their reward, in decision order, each with a payload and the end of
its reward window; a window that closes unrewarded resolves at the default reward."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
#: decisions remembered; past it the oldest resolve at once at the default reward
PENDING_MAX = 200_000


class PendingRewards(Generic[T]):
    """event id → (payload, deadline); deadlines arrive in increasing order per decision
    point (a constant window after each decision), so expiry only looks at the front."""

    def __init__(self, limit: int = PENDING_MAX) -> None:
        self.limit = limit
        self._items: OrderedDict[str, tuple[T, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def add(self, event_id: str, payload: T, deadline: float) -> Iterator[T]:
        """Remember one decision; yield the payloads pushed out by the limit."""
        self._items[event_id] = (payload, deadline)
        while len(self._items) > self.limit:
            yield self._items.popitem(last=False)[1][0]

    def pop(self, event_id: str) -> T | None:
        """The payload of a decision's first reward (None: unknown or already resolved)."""
        found = self._items.pop(event_id, None)
        return None if found is None else found[0]

    def expire(self, now: float) -> Iterator[T]:
        """Yield the payloads whose window has closed by ``now``, oldest first."""
        items = self._items
        while items:
            event_id, (payload, deadline) = next(iter(items.items()))
            if deadline > now:
                return
            del items[event_id]
            yield payload
