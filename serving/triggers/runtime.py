"""The triggers of one serving process: the engine and its scheduler thread, started and
stopped with the service (so both engines, uvicorn and Ray Serve, run it from the app's
lifespan).

The scheduler is a thread rather than an asyncio task: firing a timer makes a decision,
which is CPU-bound and synchronous like ``/decide`` itself; on a thread it never holds up
the event loop for longer than the interpreter's switch interval. It claims the due
timers every ``poll_seconds`` and at once when a trigger without a dwell schedules one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from serving.api.schemas import DecideRequest
from serving.triggers.engine import TriggerEngine

log = logging.getLogger(__name__)


class Triggers:
    """What the service calls: :meth:`observe` each event, :meth:`start` with its
    ``decide``, :meth:`stop` on shutdown."""

    def __init__(self, engine: TriggerEngine, poll_seconds: float = 0.05) -> None:
        self.engine = engine
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        engine.on_due = self._wake.set

    def observe(self, customer_id: str, event_type: str, properties: Mapping[str, Any]) -> None:
        self.engine.observe(customer_id, event_type, properties)

    def start(self, decide: Callable[[DecideRequest], bytes]) -> None:
        self.engine.bind(decide)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="maestro-triggers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the scheduler (a timer being fired finishes first) and close the store
        (again: nothing)."""
        if self._stop.is_set() and self._thread is None:
            return
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            self._thread = None
        self.engine.store.close()

    def _run(self) -> None:
        engine = self.engine
        while not self._stop.is_set():
            try:
                claimed = engine.fire_due()
            except Exception:  # a store outage: retried on the next tick
                log.exception("triggers: claiming due timers failed")
                engine.metrics.errors.labels("claim").inc()
                claimed = 0
            if claimed < engine.options.batch:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
