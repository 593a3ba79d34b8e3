"""The delivery worker: an asyncio task in the app's lifespan that drains the outbox.

It leases what is due (up to ``concurrency`` requests in flight), re-checks each
(:mod:`serving.delivery.recheck`), sends it (:mod:`serving.delivery.senders`) and records
the outcome: ``ok`` → delivered; ``fatal`` → dead letter at once; ``retry`` → pending again
after an exponential backoff with full jitter (a uniform draw in ``[0, min(cap, base·2^(n-1))]``
after the n-th attempt, AWS's "full jitter"), or a dead letter once ``max_attempts`` tries
have failed. A request enqueued in this process wakes the worker at once; requests enqueued
by other processes, and retries coming due, are picked up within ``poll_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from serving.delivery.config import Destination
from serving.delivery.metrics import DeliveryMetrics, reason_kind
from serving.delivery.outbox import Leased, Outbox
from serving.delivery.recheck import DeliveryCheck
from serving.delivery.senders import FATAL, OK, Outcome, Senders

log = logging.getLogger("maestro.delivery")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a request is tried (``Settings.delivery_*``)."""

    max_attempts: int = 8
    backoff_seconds: float = 0.5
    backoff_max_seconds: float = 60.0
    lease_seconds: float = 30.0
    poll_seconds: float = 0.2
    concurrency: int = 16

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.backoff_seconds <= 0 or self.backoff_max_seconds < self.backoff_seconds:
            raise ValueError("need 0 < backoff_seconds <= backoff_max_seconds")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after the ``attempt``-th failed try (full jitter)."""
        ceiling = min(self.backoff_max_seconds, self.backoff_seconds * 2.0 ** (attempt - 1))
        return rng.uniform(0.0, ceiling)


class DeliveryWorker:
    """Drains ``outbox`` into ``destinations`` (see the module docstring)."""

    def __init__(
        self,
        outbox: Outbox,
        destinations: Mapping[str, Destination],
        senders: Senders,
        check: DeliveryCheck | None,
        metrics: DeliveryMetrics,
        policy: RetryPolicy | None = None,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.outbox = outbox
        self.destinations = dict(destinations)
        self.senders = senders
        self.check = check
        self.metrics = metrics
        self.policy = policy or RetryPolicy()
        self.clock = clock
        self.rng = rng or random.Random()
        self.owner = uuid.uuid4().hex
        self._flights: set[asyncio.Task[None]] = set()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        #: the last lease filled every free slot: a landing flight makes room for more
        self._full = False

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start draining on the running event loop."""
        self._loop = asyncio.get_running_loop()
        self.senders.open()
        self._wake = asyncio.Event()
        self._task = self._loop.create_task(self._run(), name="maestro-delivery")

    async def stop(self) -> None:
        """Stop leasing, let the requests in flight finish, close the clients."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._flights:  # bounded: a send is bounded by its timeout, a lease outlives it
            _, stuck = await asyncio.wait(self._flights, timeout=self.policy.lease_seconds)
            for task in stuck:
                task.cancel()
        await self.senders.aclose()

    def take(self, enqueue_leased: Callable[[str, float], Leased | None]) -> bool:
        """Send a request enqueued in this process at once: when called on the worker's loop
        with a free slot, ``enqueue_leased(owner, lease_seconds)`` stores it leased to this
        worker and it starts now (no wake-up, no separate lease). False when it was not
        taken (the caller enqueues it plainly and wakes the worker)."""
        loop = self._loop
        if (loop is None or self._task is None or asyncio._get_running_loop() is not loop
                or len(self._flights) >= self.policy.concurrency):
            return False
        item = enqueue_leased(self.owner, self.policy.lease_seconds)
        if item is not None:
            self._launch(item)
        return True

    def _launch(self, item: Leased) -> None:
        task = asyncio.create_task(self._deliver(item))
        self._flights.add(task)
        task.add_done_callback(self._landed)

    def wake(self) -> None:
        """Look for due requests now (thread-safe: enqueue calls it from any thread)."""
        loop, event = self._loop, self._wake
        if loop is None or event is None or loop.is_closed():
            return
        if asyncio._get_running_loop() is loop:  # on the loop already: no self-pipe write
            event.set()
        else:
            loop.call_soon_threadsafe(event.set)

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            room = self.policy.concurrency - len(self._flights)
            leased = 0
            if room > 0:
                try:
                    batch = self.outbox.lease(room, self.policy.lease_seconds, self.owner)
                except Exception:  # the store is down: log, back off, try again
                    log.exception("delivery outbox: lease failed")
                    batch = []
                leased = len(batch)
                self._full = leased == room
                for item in batch:
                    self._launch(item)
            if leased and leased == room:
                await asyncio.sleep(0)  # more may be due: lease again after this batch starts
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.policy.poll_seconds)

    def _landed(self, task: asyncio.Task[None]) -> None:
        self._flights.discard(task)
        if self._full and self._wake is not None:
            self._full = False
            self._wake.set()  # room for what the last lease left behind

    # ------------------------------------------------------------------ one request
    async def _deliver(self, item: Leased) -> None:
        try:
            await self.deliver(item)
        except Exception:  # a bug or a store outage: the lease lapses and it is tried again
            log.exception("delivery %s: unexpected failure", item.request.delivery_id)

    async def deliver(self, item: Leased) -> str:
        """Re-check, send and record one leased request; its final state for this try
        (``delivered``, ``cancelled``, ``retry``, ``dead``)."""
        request = item.request
        dest_name = request.destination
        now = self.clock()
        why = None if self.check is None else self.check.reason(request, now)
        if why is not None:
            self.outbox.cancel(item, why)
            self.metrics.cancelled.labels(reason_kind(why)).inc()
            log.info("delivery %s to %s cancelled: %s", request.delivery_id, dest_name, why)
            return "cancelled"
        destination = self.destinations.get(dest_name)
        if destination is None:
            outcome = Outcome(FATAL, "unknown_destination")
        else:
            outcome = await self.senders.send(destination, request, now)
        if outcome.kind == OK:
            self.outbox.delivered(item)
            self.metrics.delivered.labels(dest_name).inc()
            waited = max(0.0, self.clock() - item.enqueued_at)
            self.metrics.latency.labels(dest_name).observe(waited)
            return "delivered"
        self.metrics.failed.labels(dest_name, outcome.error).inc()
        if outcome.kind == FATAL or item.attempt >= self.policy.max_attempts:
            reason = outcome.error if outcome.kind == FATAL else (
                f"{outcome.error} after {item.attempt} attempts")
            self.outbox.dead(item, reason)
            self.metrics.dead_lettered.labels(dest_name).inc()
            log.warning("delivery %s to %s dead-lettered: %s", request.delivery_id, dest_name,
                        reason)
            return "dead"
        due = self.clock() + self.policy.delay(item.attempt, self.rng)
        self.outbox.retry(item, due, outcome.error)
        self.metrics.retried.labels(dest_name).inc()
        return "retry"
