"""Wiring of delivery: settings → the outbox, the worker, and the :class:`Delivery` the
trigger engine is given as its :class:`~serving.delivery.ports.DeliveryQueue`.

``serving.factory.build_service`` sets ``service.delivery`` from :func:`build_delivery`
(None when ``triggers.yaml`` declares no destination); the app's lifespan starts its worker
on the event loop (uvicorn and every Ray Serve replica) and stops it on shutdown.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from policies.segments import TRIGGERS_FILE
from serving.delivery.config import Destination, load_destinations
from serving.delivery.metrics import DeliveryMetrics
from serving.delivery.outbox import DEAD, LEASED, PENDING, Outbox
from serving.delivery.ports import DeliveryRequest
from serving.delivery.recheck import DeliveryCheck
from serving.delivery.senders import Senders
from serving.delivery.worker import DeliveryWorker, RetryPolicy
from serving.settings import Settings

#: the states the outbox gauge shows (delivered and cancelled are counters already)
OPEN_AND_DEAD = (PENDING, LEASED, DEAD)


class Delivery:
    """The delivery queue of one process: the durable outbox, and the worker it wakes.

    :meth:`enqueue` returns once the request is stored (it survives a restart) and wakes
    the worker; :meth:`note_event` cancels what an event cancels. Both count in
    ``/metrics``.
    """

    def __init__(self, outbox: Outbox, worker: DeliveryWorker, metrics: DeliveryMetrics) -> None:
        self.outbox = outbox
        self.worker = worker
        self.metrics = metrics
        metrics.bind_outbox(OPEN_AND_DEAD, outbox.counts)

    def enqueue(self, request: DeliveryRequest) -> None:
        outbox = self.outbox
        if not self.worker.take(lambda owner, seconds: outbox.enqueue_leased(
                request, seconds, owner)):
            outbox.enqueue(request)
            self.worker.wake()
        self.metrics.enqueued.labels(request.destination).inc()

    def note_event(self, customer_id: str, event_type: str, at: float) -> int:
        cancelled = self.outbox.note_event(customer_id, event_type, at)
        if cancelled:
            self.metrics.cancelled.labels(f"event:{event_type}").inc(cancelled)
        return cancelled

    def start(self) -> None:
        """Start the worker on the running event loop (the app's lifespan)."""
        self.worker.start()

    async def stop(self) -> None:
        """Stop the worker (requests in flight finish) and close the outbox."""
        await self.worker.stop()
        self.outbox.close()


def outbox(settings: Settings, clock: Callable[[], float] = time.time) -> Outbox:
    """The outbox ``settings`` name: SQLite in the workspace, or Redis."""
    if settings.delivery_store == "redis":
        from serving.state.outbox_redis import RedisOutbox

        assert settings.delivery_redis_url is not None  # checked by the settings
        return RedisOutbox(settings.delivery_redis_url, clock=clock)
    from serving.state.outbox_sqlite import SQLiteOutbox

    return SQLiteOutbox(settings.deliveries_db, clock=clock)


def destinations(
    settings: Settings, env: Mapping[str, str] | None = None
) -> dict[str, Destination]:
    """The checked ``destinations:`` of the workspace's ``triggers.yaml`` (``file:line:
    problem``, exit 2, on a bad one)."""
    return load_destinations(settings.home / TRIGGERS_FILE, env, settings.delivery_redis_url)


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.delivery_max_attempts,
        backoff_seconds=settings.delivery_backoff_seconds,
        backoff_max_seconds=settings.delivery_backoff_max_seconds,
        lease_seconds=settings.delivery_lease_seconds,
        poll_seconds=settings.delivery_poll_seconds,
    )


def build_delivery(settings: Settings, service: Any) -> Delivery | None:
    """The delivery of ``service`` (its catalog, features, contact store, signer and
    metrics registry), or None when no destination is declared."""
    declared = destinations(settings)
    if not declared:
        return None
    store = outbox(settings)
    contacts = service.contacts.store if service.contacts is not None else None
    check = DeliveryCheck(store, service.catalog, service.features, contacts, service.signer)
    metrics = DeliveryMetrics(service.metrics.registry)
    worker = DeliveryWorker(store, declared, Senders(settings.delivery_timeout_seconds), check,
                            metrics, retry_policy(settings))
    return Delivery(store, worker, metrics)
