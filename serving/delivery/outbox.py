"""The durable outbox: the :class:`~serving.delivery.ports.DeliveryQueue` the delivery
worker drains.

A request moves ``pending`` → ``leased`` (in flight: one worker holds it until its lease
expires) → ``delivered`` | ``cancelled`` (with a reason) | ``dead`` (dead-lettered), or back
to ``pending`` with a later due time for a retry. A lease taken by a worker that dies lapses,
and another worker takes the request again, late rather than never. Every change after the
lease names the lease (:class:`Leased`: owner and attempt number), so a worker whose lease
lapsed cannot overwrite the outcome of the one that took over.

Implementations: :class:`serving.state.outbox_sqlite.SQLiteOutbox` (embedded,
``$MAESTRO_HOME/deliveries.db``, every process of one machine) and
:class:`serving.state.outbox_redis.RedisOutbox` (every replica of every node), run by the
same contract tests. Times are epoch seconds from the store's ``clock`` (tests move it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable

import orjson

from serving.delivery.ports import DeliveryQueue, DeliveryRequest

PENDING, LEASED, DELIVERED, CANCELLED, DEAD = "pending", "leased", "delivered", "cancelled", "dead"
STATES = (PENDING, LEASED, DELIVERED, CANCELLED, DEAD)


@dataclass(frozen=True, slots=True)
class Leased:
    """A request one worker holds: ``attempt`` counts this try (1 for the first)."""

    request: DeliveryRequest
    attempt: int
    owner: str
    enqueued_at: float


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A request given up on: after ``attempts`` tries, for ``reason``, at ``at``."""

    delivery_id: str
    trigger: str
    destination: str
    customer_id: str
    attempts: int
    reason: str
    at: float


def encode(request: DeliveryRequest) -> bytes:
    """The stored form of ``request`` (JSON)."""
    return orjson.dumps(asdict(request))


def decode(raw: bytes | str) -> DeliveryRequest:
    """The request :func:`encode` stored."""
    data = orjson.loads(raw)
    data["cancel_on"] = tuple(data.get("cancel_on") or ())
    return DeliveryRequest(**data)


@runtime_checkable
class Outbox(DeliveryQueue, Protocol):
    """The stored side of delivery (see the module docstring). ``enqueue`` is idempotent
    by ``delivery_id``; ``note_event`` records the event, for the delivery-time re-check of
    requests already in flight, only when the customer has an open request (cheap
    otherwise)."""

    def enqueue_leased(
        self, request: DeliveryRequest, lease_seconds: float, owner: str
    ) -> Leased | None:
        """:meth:`enqueue` with the request already leased to ``owner`` (first attempt), in
        the same write: the worker of the enqueuing process sends it at once. None when the
        delivery id was enqueued before (nothing changes)."""
        ...

    def lease(self, limit: int, lease_seconds: float, owner: str) -> list[Leased]:
        """Take up to ``limit`` requests due now (pending, or leased and lapsed) for
        ``lease_seconds``; each one's attempt count goes up by one."""
        ...

    def delivered(self, item: Leased) -> bool:
        """Mark done; False when ``item``'s lease is no longer held."""
        ...

    def retry(self, item: Leased, due: float, error: str) -> bool:
        """Back to pending, due at ``due``; False when the lease is no longer held."""
        ...

    def dead(self, item: Leased, reason: str) -> bool:
        """Dead-letter ``item``; False when the lease is no longer held."""
        ...

    def cancel(self, item: Leased, reason: str) -> bool:
        """Cancel ``item`` (found moot at delivery time); False when the lease is gone."""
        ...

    def cancelling_event(self, request: DeliveryRequest) -> str | None:
        """The type of an event noted for the customer after ``request.triggered_at`` that
        ``request.cancel_on`` names, if any."""
        ...

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The dead letters, oldest first."""
        ...

    def requeue(self, delivery_ids: Sequence[str]) -> int:
        """Make these dead letters pending again, due now, with a fresh attempt count;
        return how many were dead letters."""
        ...

    def counts(self, states: Sequence[str] = STATES) -> dict[str, int]:
        """Requests in each of ``states`` (the open ones and the dead letters are few and
        cheap to count; delivered and cancelled grow until pruned)."""
        ...

    def close(self) -> None: ...
