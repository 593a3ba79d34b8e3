"""The delivery worker's decisions, with a fake clock and scripted sends (unit): what is
retried, when, what is dead-lettered, what is cancelled; the backoff's full jitter."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from serving.delivery.config import WebhookDestination
from serving.delivery.metrics import DeliveryMetrics, reason_kind
from serving.delivery.ports import DeliveryRequest
from serving.delivery.senders import FATAL, OK, RETRY, Outcome, classify, signature
from serving.delivery.worker import DeliveryWorker, RetryPolicy
from serving.state.outbox_sqlite import SQLiteOutbox

HOOK = WebhookDestination("hook", "http://127.0.0.1:1/hook", "S", b"k" * 16)


class Clock:
    def __init__(self) -> None:
        self.now = 5_000.0

    def __call__(self) -> float:
        return self.now


class Scripted:
    """Answers each send with the next scripted outcome."""

    def __init__(self, *outcomes: Outcome) -> None:
        self.outcomes = list(outcomes)
        self.sent: list[str] = []

    async def send(self, destination: Any, request: DeliveryRequest, at: float) -> Outcome:
        self.sent.append(request.delivery_id)
        return self.outcomes.pop(0)

    def open(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


class Refuse:
    def __init__(self, reason: str | None) -> None:
        self.why = reason

    def reason(self, request: DeliveryRequest, now: float) -> str | None:
        return self.why


def req(n: int = 1) -> DeliveryRequest:
    return DeliveryRequest(f"d{n}", "t", "hook", "c1", "default", {"event_id": f"d{n}"},
                           4_999.0, "email", ("purchase",))


def value(metrics: DeliveryMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def make(tmp_path: Path, sender: Any, check: Any = None, **policy: Any) -> tuple[
        DeliveryWorker, SQLiteOutbox, Clock, DeliveryMetrics]:
    clock = Clock()
    box = SQLiteOutbox(tmp_path / "d.db", clock=clock)
    metrics = DeliveryMetrics(CollectorRegistry())
    worker = DeliveryWorker(box, {"hook": HOOK}, sender, check, metrics,
                            RetryPolicy(**policy), clock=clock, rng=random.Random(3))
    return worker, box, clock, metrics


def test_retries_back_off_then_dead_letter_after_n_attempts(tmp_path: Path) -> None:
    sender = Scripted(*[Outcome(RETRY, "http_503")] * 3)
    worker, box, clock, metrics = make(tmp_path, sender, max_attempts=3, backoff_seconds=1.0,
                                       backoff_max_seconds=3.0)
    box.enqueue(req())
    for attempt in (1, 2, 3):
        [item] = box.lease(1, 30.0, worker.owner)
        assert item.attempt == attempt
        final = asyncio.run(worker.deliver(item))
        assert final == ("dead" if attempt == 3 else "retry")
        clock.now += 3.0  # past any backoff (ceiling 3 s)
    assert box.lease(1, 30.0, worker.owner) == []
    [letter] = box.dead_letters()
    assert letter.reason == "http_503 after 3 attempts" and letter.attempts == 3
    assert value(metrics, "maestro_delivery_retried_total", destination="hook") == 2
    assert value(metrics, "maestro_delivery_dead_lettered_total", destination="hook") == 1
    assert value(metrics, "maestro_delivery_failed_total", destination="hook",
                 error="http_503") == 3


def test_a_retry_is_not_due_before_its_backoff(tmp_path: Path) -> None:
    worker, box, clock, _ = make(tmp_path, Scripted(Outcome(RETRY, "timeout")),
                                 backoff_seconds=10.0, backoff_max_seconds=10.0)
    box.enqueue(req())
    [item] = box.lease(1, 30.0, worker.owner)
    asyncio.run(worker.deliver(item))
    delay = RetryPolicy(backoff_seconds=10.0, backoff_max_seconds=10.0).delay(
        1, random.Random(3))
    clock.now += delay - 0.001
    assert box.lease(1, 30.0, worker.owner) == []
    clock.now += 0.002
    assert len(box.lease(1, 30.0, worker.owner)) == 1


def test_a_refusing_4xx_is_dead_at_once_and_408_429_retry(tmp_path: Path) -> None:
    assert classify(404) == Outcome(FATAL, "http_404")
    assert classify(408).kind == RETRY and classify(429).kind == RETRY
    assert classify(500).kind == RETRY and classify(204).kind == OK
    worker, box, _, _ = make(tmp_path, Scripted(Outcome(FATAL, "http_410")))
    box.enqueue(req())
    [item] = box.lease(1, 30.0, worker.owner)
    assert asyncio.run(worker.deliver(item)) == "dead"
    assert box.dead_letters()[0].reason == "http_410"


def test_ok_is_delivered_with_its_latency(tmp_path: Path) -> None:
    worker, box, clock, metrics = make(tmp_path, Scripted(Outcome(OK)))
    box.enqueue(req())
    clock.now += 0.25
    [item] = box.lease(1, 30.0, worker.owner)
    assert asyncio.run(worker.deliver(item)) == "delivered"
    assert box.counts()["delivered"] == 1
    assert value(metrics, "maestro_delivery_latency_seconds_sum", destination="hook") == \
        pytest.approx(0.25, abs=1e-9)


def test_a_moot_request_is_cancelled_unsent(tmp_path: Path) -> None:
    sender = Scripted()
    worker, box, _, metrics = make(tmp_path, sender, check=Refuse("no_consent:email"))
    box.enqueue(req())
    [item] = box.lease(1, 30.0, worker.owner)
    assert asyncio.run(worker.deliver(item)) == "cancelled"
    assert sender.sent == [] and box.counts()["cancelled"] == 1
    assert value(metrics, "maestro_delivery_cancelled_total", reason="consent") == 1


def test_full_jitter_stays_under_a_doubling_ceiling() -> None:
    policy = RetryPolicy(backoff_seconds=0.5, backoff_max_seconds=4.0)
    rng = random.Random(0)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 4.0)]:
        draws = [policy.delay(attempt, rng) for _ in range(2000)]
        assert min(draws) >= 0.0 and max(draws) <= ceiling
        assert sum(draws) / len(draws) == pytest.approx(ceiling / 2, rel=0.08)  # uniform


def test_reason_labels_are_bounded_and_the_signature_is_hmac_sha256() -> None:
    assert reason_kind("no_consent:sms") == "consent"
    assert reason_kind("cap:email:24h") == "contact_policy"
    assert reason_kind("cooldown:7d") == "contact_policy"
    assert reason_kind("event:purchase") == "event:purchase"
    # RFC 4231 test case 2
    assert signature(b"Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
