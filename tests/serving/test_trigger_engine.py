"""The trigger engine over a real SQLite timer store with a fake clock, a fake decide and
an in-memory delivery queue: dwell, absence, sequences, cancellation, restart of a run,
no-contact decisions, late and repeated firings, and the metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry
from trigger_yaml import CATALOG, FEATURES, TRIGGERS_YAML

from features.events import EVENT_TYPES
from policies.catalog import load_catalog
from policies.segments import SegmentSet, load_segments
from serving.api.schemas import DecideRequest
from serving.delivery.ports import DeliveryQueue, DeliveryRequest
from serving.state.timers_sqlite import SQLiteTimerStore
from serving.triggers.engine import EngineOptions, TriggerEngine
from serving.triggers.spec import load_triggers

YAML = TRIGGERS_YAML
CUSTOMERS = {"vip": {"lifetime_value": 5000.0, "tenure_days": 900},
             "plain": {"lifetime_value": 10.0, "tenure_days": 3}}


class ListQueue:
    """An in-memory DeliveryQueue (unit tests only)."""

    def __init__(self) -> None:
        self.requests: list[DeliveryRequest] = []

    def enqueue(self, request: DeliveryRequest) -> None:
        self.requests.append(request)

    def note_event(self, customer_id: str, event_type: str, at: float) -> int:
        return 0


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class FakeDecide:
    """Answers like /decide; the same request_id gets the same answer (as the recorder)."""

    def __init__(self) -> None:
        self.calls: list[DecideRequest] = []
        self.answers: dict[str, bytes] = {}
        self.action: str | None = "email_winback"

    def __call__(self, req: DecideRequest) -> bytes:
        self.calls.append(req)
        key = str(req.request_id)
        if key not in self.answers:
            action = self.action
            self.answers[key] = orjson.dumps({
                "event_id": f"ev{len(self.answers)}", "action_id": action,
                "channel": None if action is None else "email", "probability": 1.0,
            })
        return self.answers[key]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[TriggerEngine, Clock, FakeDecide, ListQueue, Any]]:
    path = tmp_path / "triggers.yaml"
    path.write_text(YAML)
    segments = SegmentSet(load_segments(path, FEATURES))
    catalog = load_catalog(CATALOG, FEATURES, segments)
    triggers = load_triggers(path, catalog, FEATURES, segments, EVENT_TYPES)
    for t in triggers.values():
        for c in t.conditions:
            segments.require(c.customer, ())
    clock, decide, queue = Clock(), FakeDecide(), ListQueue()
    registry = CollectorRegistry()
    reads: list[str] = []

    def features(cid: str) -> dict[str, Any]:
        reads.append(cid)
        return CUSTOMERS.get(cid, {})

    store = SQLiteTimerStore(tmp_path / "timers.db")
    engine = TriggerEngine(triggers, store, queue, features=features, segments=segments,
                           registry=registry, clock=clock, options=EngineOptions(lease_seconds=30))
    engine.bind(decide)
    assert isinstance(queue, DeliveryQueue)
    yield engine, clock, decide, queue, (registry, reads)
    store.close()


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_a_vip_on_pricing_fires_after_the_dwell(setup) -> None:
    engine, clock, decide, queue, (registry, _) = setup
    engine.observe("vip", "page_view", {"page": "pricing"})
    assert metric(registry, "maestro_trigger_timers_scheduled_total", trigger="vip_on_pricing") == 1
    clock.now += 119
    assert engine.fire_due() == 0 and decide.calls == []
    clock.now += 1
    assert engine.fire_due() == 1
    (req,) = decide.calls
    assert (req.customer_id, req.decision_point) == ("vip", "churn_risk")
    assert req.request_id.startswith("trigger:vip_on_pricing:")
    (sent,) = queue.requests
    assert (sent.trigger, sent.destination, sent.customer_id, sent.decision_point) == (
        "vip_on_pricing", "crm_hook", "vip", "churn_risk")
    assert sent.delivery_id == "ev0" and sent.channel == "email"
    assert sent.decision["action_id"] == "email_winback" and sent.cancel_on == ("page_view",)
    assert sent.triggered_at == pytest.approx(clock.now - 120, abs=1e-6)
    assert engine.store.pending() == 0
    assert metric(registry, "maestro_trigger_timers_fired_total", trigger="vip_on_pricing",
                  outcome="delivered") == 1
    assert metric(registry, "maestro_trigger_timers_late_total", trigger="vip_on_pricing") == 0


def test_a_non_vip_or_another_page_schedules_nothing(setup) -> None:
    engine, clock, _, queue, (_, reads) = setup
    engine.observe("plain", "page_view", {"page": "pricing"})
    engine.observe("vip", "page_view", {"page": "home"})
    engine.observe("vip", "page_view", {})  # no page property: the condition does not hold
    assert engine.store.pending() == 0
    clock.now += 1000
    assert engine.fire_due() == 0 and queue.requests == []
    assert reads == ["plain"]  # features read only when the event's own condition held


def test_a_vip_who_views_another_page_cancels(setup) -> None:
    engine, clock, decide, queue, (registry, _) = setup
    engine.observe("vip", "page_view", {"page": "pricing"})
    clock.now += 60
    engine.observe("vip", "page_view", {"page": "home"})
    assert engine.store.pending() == 0
    assert metric(registry, "maestro_trigger_timers_cancelled_total", trigger="vip_on_pricing",
                  reason="event") == 1
    clock.now += 1000
    assert engine.fire_due() == 0 and decide.calls == [] and queue.requests == []


def test_another_pricing_view_restarts_the_dwell(setup) -> None:
    engine, clock, _, queue, (registry, _) = setup
    engine.observe("vip", "page_view", {"page": "pricing"})
    clock.now += 100
    engine.observe("vip", "page_view", {"page": "pricing"})  # cancels, then starts again
    assert metric(registry, "maestro_trigger_timers_cancelled_total", trigger="vip_on_pricing",
                  reason="event") == 1
    assert engine.store.pending() == 1
    clock.now += 30
    assert engine.fire_due() == 0
    clock.now += 90
    assert engine.fire_due() == 1 and len(queue.requests) == 1


def test_an_abandoned_cart_sequence_and_a_purchase_between_its_steps(setup) -> None:
    engine, clock, decide, queue, _ = setup
    engine.observe("c1", "cart_updated", {"cart_value": 50.0})
    engine.observe("c2", "cart_updated", {"cart_value": 80.0})
    engine.observe("c3", "cart_updated", {"cart_value": 0.0})  # an empty cart: no trigger
    clock.now += 3600
    assert engine.fire_due() == 2
    assert [(r.customer_id, r.destination) for r in queue.requests] == [
        ("c1", "engine_stream"), ("c2", "engine_stream")]
    assert {dict(c.context)["reason"] for c in decide.calls} == {"cart"}
    engine.observe("c1", "purchase", {"value": 50.0})
    clock.now += 86400 - 3600
    assert engine.fire_due() == 1
    assert [(r.customer_id, r.destination) for r in queue.requests[2:]] == [("c2", "crm_hook")]
    assert engine.store.pending() == 0


def test_a_trigger_without_dwell_fires_at_once_and_wakes_the_loop(setup) -> None:
    engine, _, _, queue, _ = setup
    woken: list[bool] = []
    engine.on_due = lambda: woken.append(True)
    engine.observe("c9", "invoice_overdue", {})
    assert woken == [True]
    assert engine.fire_due() == 1 and queue.requests[0].decision_point == "billing_overdue"


def test_a_decision_of_no_contact_is_not_delivered(setup) -> None:
    engine, _, decide, queue, (registry, _) = setup
    decide.action = None
    engine.observe("c9", "invoice_overdue", {})
    assert engine.fire_due() == 1
    assert queue.requests == [] and engine.store.pending() == 0
    assert metric(registry, "maestro_trigger_timers_fired_total", trigger="overdue_now",
                  outcome="no_contact") == 1


def test_a_timer_fired_again_after_a_lost_lease_is_late_and_decides_once(setup) -> None:
    engine, clock, decide, queue, (registry, _) = setup
    engine.observe("c9", "invoice_overdue", {})
    (lost,) = engine.store.claim(clock.now, "dead-replica", 30, 10)  # it dies mid-fire
    clock.now += 29
    assert engine.fire_due() == 0
    clock.now += 2
    assert engine.fire_due() == 1
    assert metric(registry, "maestro_trigger_timers_late_total", trigger="overdue_now") == 1
    assert engine.fire(lost) == "delivered"  # the dead replica's fire, had it finished
    assert len({c.request_id for c in decide.calls}) == 1  # one decision: one request id
    assert {r.delivery_id for r in queue.requests} == {"ev0"}  # one idempotency key


def test_a_failing_decide_leaves_the_timer_to_fire_later(setup) -> None:
    engine, clock, decide, queue, (registry, _) = setup
    engine.observe("c9", "invoice_overdue", {})
    engine.bind(lambda req: (_ for _ in ()).throw(RuntimeError("log down")))
    assert engine.fire_due() == 1
    assert metric(registry, "maestro_trigger_errors_total", stage="fire") == 1
    assert engine.store.pending() == 1
    engine.bind(decide)
    clock.now += 31
    assert engine.fire_due() == 1 and len(queue.requests) == 1


def test_a_timer_of_a_removed_trigger_is_dropped(setup) -> None:
    engine, _, _, queue, (registry, _) = setup
    engine.observe("c9", "invoice_overdue", {})
    engine.triggers.pop("overdue_now")
    assert engine.fire_due() == 1 and queue.requests == [] and engine.store.pending() == 0
    assert metric(registry, "maestro_trigger_timers_fired_total", trigger="overdue_now",
                  outcome="dropped") == 1
