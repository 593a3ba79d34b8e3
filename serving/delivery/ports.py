"""The seam between triggers and delivery.

A trigger that fires makes a decision and hands a :class:`DeliveryRequest` to a
:class:`DeliveryQueue`; the queue owns it from then on (durably: a request enqueued is
delivered or dead-lettered, never lost). Events that cancel a pending delivery (a purchase
made between the trigger and the delivery, for example) reach the queue through
:meth:`DeliveryQueue.note_event`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class DeliveryRequest:
    """One decision to deliver.

    ``delivery_id`` is the decision's event id: the receiver's idempotency key.
    ``decision`` is the ``/decide`` answer body, delivered as made. ``cancel_on`` names
    event types that, seen for the customer after ``triggered_at``, cancel the delivery.
    ``channel`` is the decided channel (None for no contact), re-checked against consent
    and the contact caps at delivery time.
    """

    delivery_id: str
    trigger: str
    destination: str
    customer_id: str
    decision_point: str
    decision: Mapping[str, Any]
    triggered_at: float
    channel: str | None = None
    cancel_on: tuple[str, ...] = field(default_factory=tuple)


@runtime_checkable
class DeliveryQueue(Protocol):
    """Takes triggered decisions and delivers each once (at least once on the wire, with
    the idempotency key making it once for the receiver)."""

    def enqueue(self, request: DeliveryRequest) -> None:
        """Accept ``request`` durably (it survives a restart once this returns)."""
        ...

    def note_event(self, customer_id: str, event_type: str, at: float) -> int:
        """Cancel the customer's pending deliveries that ``event_type`` cancels; return
        how many were cancelled."""
        ...
