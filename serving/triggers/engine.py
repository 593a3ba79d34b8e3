"""The trigger engine: events in, timers scheduled or cancelled; due timers out, decided
and handed to delivery.

:meth:`TriggerEngine.observe` sees every customer event ``POST /events`` ingests. First
it cancels the customer's pending runs of the triggers the event cancels (a type of their
``cancel_on`` whose conditions hold), then it starts a run of each trigger the event
matches (its ``on`` type and every ``when``): one timer per step, due ``seconds`` after
the event, replacing the customer's pending run of that trigger (a new match restarts
the clock). Conditions read the event, the customer's features (one read, only when a
condition needs them) and the segments.

:meth:`TriggerEngine.fire_due` claims the due timers (leased, see
:mod:`serving.state.timers`) and fires each: a decision at the step's decision point made
by the service's own ``decide`` (rules, contact policy, policy and logging, exactly as
``/decide``), with the timer's id as the ``request_id``, so that a timer fired again after
a replica's death answers with the decision already made, logged once. A decision that
contacts the customer becomes a :class:`~serving.delivery.ports.DeliveryRequest` for the
step's destination; a decision of no contact is not delivered.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter

from policies.conditions import event_values, with_event
from policies.segments import SegmentSet
from policies.types import Context
from serving.api.schemas import DecideRequest
from serving.delivery.ports import DeliveryQueue, DeliveryRequest
from serving.state.timers import Timer, TimerStore
from serving.triggers.spec import EventMatch, Trigger

log = logging.getLogger(__name__)

#: the prefix of a trigger decision's ``request_id`` (in the decision log)
REQUEST_PREFIX = "trigger:"


@dataclass(frozen=True)
class EngineOptions:
    """``lease_seconds``: how long a claimed timer is a replica's before another may fire
    it; ``late_seconds``: a timer fired more than this after it was due counts as late;
    ``batch``: timers claimed at once."""

    lease_seconds: float = 30.0
    late_seconds: float = 1.0
    batch: int = 64


class TriggerMetrics:
    """The engine's counters, on the service's Prometheus registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.scheduled = Counter("maestro_trigger_timers_scheduled",
                                 "Trigger timers scheduled (one per step of a run)",
                                 ["trigger"], registry=registry)
        self.fired = Counter("maestro_trigger_timers_fired",
                             "Trigger timers fired, by outcome (delivered: handed to delivery; "
                             "no_contact: decided not to contact; dropped: trigger removed)",
                             ["trigger", "outcome"], registry=registry)
        self.cancelled = Counter("maestro_trigger_timers_cancelled",
                                 "Pending trigger timers cancelled by an event or replaced by "
                                 "a new run", ["trigger", "reason"], registry=registry)
        self.late = Counter("maestro_trigger_timers_late",
                            "Trigger timers fired late (after a replica's lease ran out, or "
                            "more than the late threshold after they were due)",
                            ["trigger"], registry=registry)
        self.errors = Counter("maestro_trigger_errors",
                              "Trigger failures (the timer stays pending and fires later)",
                              ["stage"], registry=registry)


class TriggerEngine:
    """Matches events against ``triggers`` and fires their due timers (module doc).

    ``features`` reads a customer's feature values (``customer_id → mapping``);
    ``decide`` is bound at :meth:`bind` (the service's own, to keep one decision path);
    ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        triggers: Mapping[str, Trigger],
        store: TimerStore,
        queue: DeliveryQueue,
        *,
        features: Callable[[str], Mapping[str, Any]],
        segments: SegmentSet,
        registry: CollectorRegistry,
        replica: str | None = None,
        options: EngineOptions | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.triggers = dict(triggers)
        self.store = store
        self.queue = queue
        self.options = options or EngineOptions()
        self.metrics = TriggerMetrics(registry)
        self.replica = replica or f"replica-{uuid.uuid4().hex[:8]}"
        self._features = features
        self._segments = segments
        self._clock = clock
        self._decide: Callable[[DecideRequest], bytes] | None = None
        #: called after a run with a step due now is scheduled (the loop's wake-up)
        self.on_due: Callable[[], None] = lambda: None
        self._on: dict[str, list[Trigger]] = {}
        self._cancel: dict[str, list[tuple[Trigger, EventMatch]]] = {}
        for trigger in self.triggers.values():
            self._on.setdefault(trigger.on.type, []).append(trigger)
            for match in trigger.cancel_on:
                self._cancel.setdefault(match.type, []).append((trigger, match))

    def bind(self, decide: Callable[[DecideRequest], bytes]) -> None:
        """The decision path timers fire through (the service binds its ``decide``)."""
        self._decide = decide

    # ------------------------------------------------------------------ events
    def observe(self, customer_id: str, event_type: str, properties: Mapping[str, Any]) -> None:
        """Cancel what the event cancels, then schedule what it starts."""
        cancels = self._cancel.get(event_type)
        starts = self._on.get(event_type)
        if not cancels and not starts:
            return
        act = _Activation(self, customer_id, event_type, properties)
        for trigger, match in cancels or ():
            if act.all_hold(match):
                n = self.store.cancel(customer_id, [trigger.name])
                if n:
                    self.metrics.cancelled.labels(trigger.name, "event").inc(n)
        for trigger in starts or ():
            if act.all_hold(trigger.on):
                self._schedule(trigger, customer_id)

    def _schedule(self, trigger: Trigger, customer_id: str) -> None:
        now = self._clock()
        run = [
            Timer(uuid.uuid4().hex, trigger.name, i, customer_id, now + step.seconds, now)
            for i, step in enumerate(trigger.steps)
        ]
        replaced = self.store.schedule(run)
        if replaced:
            self.metrics.cancelled.labels(trigger.name, "restarted").inc(replaced)
        self.metrics.scheduled.labels(trigger.name).inc(len(run))
        if trigger.steps[0].seconds == 0:
            self.on_due()

    # ------------------------------------------------------------------ timers
    def fire_due(self) -> int:
        """Claim and fire the timers due now; return how many were claimed."""
        opts = self.options
        timers = self.store.claim(self._clock(), self.replica, opts.lease_seconds, opts.batch)
        for timer in timers:
            try:
                self.fire(timer)
            except Exception:  # the lease runs out and another claim fires it again
                log.exception("trigger %s: timer %s failed", timer.trigger, timer.timer_id)
                self.metrics.errors.labels("fire").inc()
                continue
            self.store.done(timer)
        return len(timers)

    def fire(self, timer: Timer) -> str:
        """Decide for one claimed timer and hand a contact to delivery; the outcome."""
        trigger = self.triggers.get(timer.trigger)
        if trigger is None or timer.step >= len(trigger.steps):  # removed from triggers.yaml
            self.metrics.fired.labels(timer.trigger, "dropped").inc()
            return "dropped"
        if self._decide is None:
            raise RuntimeError("the trigger engine fired before a decide was bound")
        step = trigger.steps[timer.step]
        req = DecideRequest(
            customer_id=timer.customer_id, decision_point=step.decision_point,
            request_id=f"{REQUEST_PREFIX}{timer.trigger}:{timer.timer_id}",
            context=dict(step.context),
        )
        answer = orjson.loads(self._decide(req))
        now = self._clock()
        if timer.attempts > 1 or now - timer.due_at > self.options.late_seconds:
            self.metrics.late.labels(trigger.name).inc()
        channel = answer.get("channel")
        if answer.get("action_id") is None or channel in (None, "none"):
            self.metrics.fired.labels(trigger.name, "no_contact").inc()
            return "no_contact"
        self.queue.enqueue(DeliveryRequest(
            delivery_id=answer["event_id"], trigger=trigger.name, destination=step.deliver,
            customer_id=timer.customer_id, decision_point=step.decision_point,
            decision=answer, triggered_at=timer.created_at, channel=channel,
            cancel_on=tuple(m.type for m in trigger.cancel_on),
        ))
        self.metrics.fired.labels(trigger.name, "delivered").inc()
        return "delivered"


class _Activation:
    """The condition inputs of one event, built on first need: the event alone, or with
    the customer's features and segments when a condition reads them."""

    def __init__(
        self, engine: TriggerEngine, customer_id: str, event_type: str,
        properties: Mapping[str, Any],
    ) -> None:
        self._engine = engine
        self._customer_id = customer_id
        self._event = event_values(event_type, properties)
        self._act: Any = None
        self._full = False

    def all_hold(self, match: EventMatch) -> bool:
        """Whether every condition holds: those on the event alone first, so that the
        customer's features are read only when those pass."""
        later = []
        for cond in match.when:
            if cond.customer or cond.segments:
                later.append(cond)
            elif not cond.holds(self._get(False)):
                return False
        return all(c.holds(self._get(True)) for c in later)

    def _get(self, full: bool) -> Any:
        if self._act is not None and (self._full or not full):
            return self._act
        base = None
        if full:
            engine = self._engine
            customer = engine._features(self._customer_id)
            ctx = Context.trusted(self._customer_id, customer, {}, "", engine._clock())
            base = engine._segments.activation(ctx)
        self._act, self._full = with_event(base, self._event), full
        return self._act
