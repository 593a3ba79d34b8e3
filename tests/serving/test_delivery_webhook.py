"""Delivery to a REAL webhook receiver (an HTTP server on 127.0.0.1) and a REAL Redis Stream:
the body and its signature as the receiver sees them, a receiver down for a while (every
request delivered exactly once after it returns), dead letters after N attempts.

``MAESTRO_TEST_DOWN_SECONDS`` sets how long the receiver stays down (default 3 s; the issue's
30 s is run by hand: ``MAESTRO_TEST_DOWN_SECONDS=30 pytest -k down``).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import orjson
from prometheus_client import CollectorRegistry
from webhook_receiver import WebhookReceiver

from serving.delivery.config import StreamDestination, WebhookDestination
from serving.delivery.factory import Delivery
from serving.delivery.metrics import DeliveryMetrics
from serving.delivery.ports import DeliveryRequest
from serving.delivery.senders import Senders
from serving.delivery.worker import DeliveryWorker, RetryPolicy
from serving.state.outbox_sqlite import SQLiteOutbox

SECRET = b"webhook-secret-for-tests"
DOWN_SECONDS = float(os.environ.get("MAESTRO_TEST_DOWN_SECONDS", "3"))


def req(n: int, destination: str = "hook") -> DeliveryRequest:
    return DeliveryRequest(
        delivery_id=f"evt-{n:04d}", trigger="vip_on_pricing", destination=destination,
        customer_id=f"c{n % 7}", decision_point="default",
        decision={"event_id": f"evt-{n:04d}", "action_id": "email_offer", "channel": "email",
                  "probability": 0.5},
        triggered_at=time.time(), channel="email",
    )


def worker_for(box: SQLiteOutbox, destinations: dict, policy: RetryPolicy) -> tuple[
        DeliveryWorker, DeliveryMetrics]:
    metrics = DeliveryMetrics(CollectorRegistry())
    return DeliveryWorker(box, destinations, Senders(2.0), None, metrics, policy), metrics


async def until(predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)


def test_the_receiver_gets_a_signed_body_once_per_request(tmp_path: Path) -> None:
    receiver = WebhookReceiver().start()
    box = SQLiteOutbox(tmp_path / "d.db")
    hook = WebhookDestination("hook", receiver.url, "S", SECRET)
    worker, metrics = worker_for(box, {"hook": hook}, RetryPolicy())
    delivery = Delivery(box, worker, metrics)

    async def scenario() -> None:
        worker.start()
        for n in range(20):  # on the worker's loop: handed over leased, sent at once
            delivery.enqueue(req(n))
        delivery.enqueue(req(3))  # the same delivery id again: nothing more is sent
        await until(lambda: len(receiver.received) >= 20, 20)
        await asyncio.sleep(0.3)  # nothing more arrives
        await worker.stop()

    try:
        asyncio.run(scenario())
        delivered = box.counts()["delivered"]
    finally:
        receiver.stop()
        box.close()
    got = receiver.received
    assert sorted(r.idempotency_key for r in got) == [f"evt-{n:04d}" for n in range(20)]
    assert all(r.verifies(SECRET) for r in got)
    assert not any(r.verifies(b"another-secret") for r in got)
    first = orjson.loads(next(r.body for r in got if r.idempotency_key == "evt-0003"))
    assert set(first) == {"trigger", "customer_id", "decision", "delivered_at"}
    assert first["trigger"] == "vip_on_pricing" and first["customer_id"] == "c3"
    assert first["decision"]["event_id"] == "evt-0003"
    assert delivered == 20
    assert metrics.registry.get_sample_value(
        "maestro_delivery_delivered_total", {"destination": "hook"}) == 20


def test_receiver_down_then_back_every_request_exactly_once(tmp_path: Path) -> None:
    receiver = WebhookReceiver()  # not listening yet: connections are refused
    box = SQLiteOutbox(tmp_path / "d.db")
    hook = WebhookDestination("hook", receiver.url, "S", SECRET)
    policy = RetryPolicy(max_attempts=10_000, backoff_seconds=0.05, backoff_max_seconds=1.0)
    worker, metrics = worker_for(box, {"hook": hook}, policy)
    n = 100

    async def scenario() -> float:
        worker.start()
        for i in range(n):
            box.enqueue(req(i))
            worker.wake()
        await asyncio.sleep(DOWN_SECONDS)
        assert receiver.received == []
        back = time.monotonic()
        receiver.start()
        await until(lambda: box.counts()["delivered"] == n, 30 + DOWN_SECONDS)
        recovered = time.monotonic() - back
        await asyncio.sleep(0.5)  # no late duplicate
        await worker.stop()
        return recovered

    try:
        recovered = asyncio.run(scenario())
    finally:
        receiver.stop()
        box.close()
    keys = receiver.delivered_keys()
    assert len(keys) == n and len(set(keys)) == n  # 0 lost, 0 duplicates
    assert recovered < 5.0  # the backoff ceiling (1 s) bounds the wait after recovery
    retried = metrics.registry.get_sample_value(
        "maestro_delivery_retried_total", {"destination": "hook"})
    assert retried is not None and retried >= n
    print(f"down {DOWN_SECONDS:.0f} s: {n} delivered once each, {recovered:.2f} s after "
          f"the receiver came back, {retried:.0f} retries")


def test_a_failing_receiver_dead_letters_after_n_attempts(tmp_path: Path) -> None:
    receiver = WebhookReceiver(status=503).start()
    box = SQLiteOutbox(tmp_path / "d.db")
    hook = WebhookDestination("hook", receiver.url, "S", SECRET)
    policy = RetryPolicy(max_attempts=4, backoff_seconds=0.02, backoff_max_seconds=0.05)
    worker, metrics = worker_for(box, {"hook": hook}, policy)

    async def scenario() -> None:
        worker.start()
        box.enqueue(req(1))
        worker.wake()
        await until(lambda: box.counts()["dead"] == 1, 10)
        receiver.status = 404  # a refusing 4xx: dead at once
        box.enqueue(req(2))
        worker.wake()
        await until(lambda: box.counts()["dead"] == 2, 10)
        await worker.stop()

    try:
        asyncio.run(scenario())
    finally:
        receiver.stop()
    letters = {d.delivery_id: d for d in box.dead_letters()}
    box.close()
    assert letters["evt-0001"].attempts == 4
    assert letters["evt-0001"].reason == "http_503 after 4 attempts"
    assert letters["evt-0002"].attempts == 1 and letters["evt-0002"].reason == "http_404"
    assert metrics.registry.get_sample_value(
        "maestro_delivery_failed_total", {"destination": "hook", "error": "http_503"}) == 4


def test_a_redis_stream_destination_gets_the_same_fields(tmp_path: Path,
                                                         redis_server: int) -> None:
    import redis

    url = f"redis://127.0.0.1:{redis_server}/4"
    stream = StreamDestination("engine", "maestro:test-deliveries", url)
    box = SQLiteOutbox(tmp_path / "d.db")
    worker, _ = worker_for(box, {"engine": stream}, RetryPolicy())
    client = redis.Redis.from_url(url)
    client.delete(stream.key)

    async def scenario() -> None:
        worker.start()
        for i in range(5):
            box.enqueue(req(i, "engine"))
            worker.wake()
        await until(lambda: box.counts()["delivered"] == 5, 10)
        await worker.stop()

    asyncio.run(scenario())
    box.close()
    entries = client.xrange(stream.key)
    client.close()
    assert len(entries) == 5
    rows = [{k.decode(): v.decode() for k, v in e[1].items()} for e in entries]
    assert sorted(r["delivery_id"] for r in rows) == [f"evt-{i:04d}" for i in range(5)]
    fields = next(r for r in rows if r["delivery_id"] == "evt-0002")
    assert set(fields) == {"trigger", "customer_id", "decision", "delivered_at", "delivery_id"}
    assert fields["delivery_id"] == "evt-0002" and fields["customer_id"] == "c2"
    assert orjson.loads(fields["decision"])["event_id"] == "evt-0002"
