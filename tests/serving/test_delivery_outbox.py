"""The outbox contract, run over every implementation (SQLite file, real redis-server) with
a fake clock: leases, fencing, retries, cancellation by events, dead letters, re-queuing."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.delivery.outbox import Outbox
from serving.delivery.ports import DeliveryRequest

_PREFIXES = itertools.count()


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def delivery(n: int = 1, customer: str = "c1", cancel_on: tuple[str, ...] = ("purchase",),
            triggered_at: float = 999_990.0) -> DeliveryRequest:
    return DeliveryRequest(
        delivery_id=f"d{n}", trigger="cart", destination="hook", customer_id=customer,
        decision_point="default", decision={"event_id": f"d{n}", "action_id": "email_x"},
        triggered_at=triggered_at, channel="email", cancel_on=cancel_on,
    )


def open_outbox(kind: str, tmp_path: Path, clock: Clock, redis_port: int | None) -> Outbox:
    if kind == "sqlite":
        from serving.state.outbox_sqlite import SQLiteOutbox

        return SQLiteOutbox(tmp_path / "deliveries.db", clock=clock)
    from serving.state.outbox_redis import RedisOutbox

    return RedisOutbox(f"redis://127.0.0.1:{redis_port}/3", clock=clock,
                       prefix=f"t{next(_PREFIXES)}:")


@pytest.fixture(params=["sqlite", "redis"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def box(
    kind: str, tmp_path: Path, clock: Clock, request: pytest.FixtureRequest
) -> Iterator[Outbox]:
    port = request.getfixturevalue("redis_server") if kind == "redis" else None
    store = open_outbox(kind, tmp_path, clock, port)
    yield store
    store.close()


def test_enqueue_is_durable_and_idempotent(kind: str, tmp_path: Path, clock: Clock,
                                           request: pytest.FixtureRequest) -> None:
    port = request.getfixturevalue("redis_server") if kind == "redis" else None
    first = open_outbox(kind, tmp_path, clock, port)
    first.enqueue(delivery(1))
    first.enqueue(delivery(1))  # the same delivery id: still one
    prefix = getattr(first, "prefix", None)
    first.close()
    if kind == "sqlite":
        again = open_outbox(kind, tmp_path, clock, port)
    else:
        from serving.state.outbox_redis import RedisOutbox

        again = RedisOutbox(f"redis://127.0.0.1:{port}/3", clock=clock, prefix=prefix)
    assert again.counts()["pending"] == 1
    [item] = again.lease(10, 30.0, "w1")
    assert item.request == delivery(1) and item.attempt == 1
    again.close()


def test_a_lease_is_exclusive_until_it_lapses(box: Outbox, clock: Clock) -> None:
    for n in range(3):
        box.enqueue(delivery(n))
    a = box.lease(2, 30.0, "a")
    b = box.lease(10, 60.0, "b")  # "b" holds its one longer
    assert len(a) == 2 and len(b) == 1
    assert {i.request.delivery_id for i in a + b} == {"d0", "d1", "d2"}
    assert box.lease(10, 30.0, "c") == []
    assert box.counts()["leased"] == 3
    clock.now += 31.0  # "a" died holding two: they come back, late rather than never
    c = box.lease(10, 30.0, "c")
    assert sorted(i.request.delivery_id for i in c) == sorted(i.request.delivery_id for i in a)
    assert all(i.attempt == 2 for i in c)
    # the fence: "a" cannot record an outcome for a lease it lost
    assert box.delivered(a[0]) is False
    assert box.delivered(c[0]) is True
    assert box.counts()["delivered"] == 1


def test_retry_waits_for_its_due_time(box: Outbox, clock: Clock) -> None:
    box.enqueue(delivery(1))
    [item] = box.lease(1, 30.0, "w")
    assert box.retry(item, clock.now + 5.0, "http_503") is True
    assert box.lease(1, 30.0, "w") == []
    clock.now += 5.0
    [again] = box.lease(1, 30.0, "w")
    assert again.attempt == 2


def test_dead_letters_are_listed_and_requeued(box: Outbox, clock: Clock) -> None:
    box.enqueue(delivery(1))
    box.enqueue(delivery(2))
    [item, _] = box.lease(2, 30.0, "w")
    assert box.dead(item, "http_404") is True
    [letter] = box.dead_letters()
    assert (letter.delivery_id, letter.reason, letter.attempts) == (
        item.request.delivery_id, "http_404", 1)
    assert box.counts()["dead"] == 1
    assert box.requeue([item.request.delivery_id, "nope"]) == 1
    assert box.dead_letters() == []
    clock.now += 1.0
    [back] = box.lease(5, 30.0, "w")
    assert back.request.delivery_id == item.request.delivery_id and back.attempt == 1


def test_an_event_cancels_what_names_it(box: Outbox, clock: Clock) -> None:
    box.enqueue(delivery(1, "c1", ("purchase",)))
    box.enqueue(delivery(2, "c1", ("page_view",)))
    box.enqueue(delivery(3, "c2", ("purchase",)))
    assert box.note_event("c9", "purchase", clock.now) == 0  # nothing open for c9
    assert box.note_event("c1", "purchase", 999_980.0) == 0  # before the trigger: no effect
    assert box.note_event("c1", "purchase", clock.now) == 1
    assert box.counts()["cancelled"] == 1
    leased = {i.request.delivery_id: i for i in box.lease(10, 30.0, "w")}
    assert set(leased) == {"d2", "d3"}
    # an event arriving while d2 is in flight is seen by the delivery-time re-check
    assert box.cancelling_event(leased["d2"].request) is None
    assert box.note_event("c1", "page_view", clock.now + 1.0) == 0
    assert box.cancelling_event(leased["d2"].request) == "page_view"
    assert box.cancelling_event(leased["d3"].request) is None
    assert box.cancel(leased["d2"], "event:page_view") is True
    assert box.counts()["cancelled"] == 2


def test_enqueue_leased_hands_the_request_to_its_worker(box: Outbox, clock: Clock) -> None:
    item = box.enqueue_leased(delivery(1), 30.0, "mine")
    assert item is not None and (item.attempt, item.owner) == (1, "mine")
    assert box.enqueue_leased(delivery(1), 30.0, "mine") is None  # enqueued before
    box.enqueue(delivery(1))  # still one
    assert box.counts()["leased"] == 1 and box.counts()["pending"] == 0
    assert box.lease(10, 30.0, "other") == []  # held until its lease lapses
    assert box.retry(item, clock.now + 1.0, "http_503") is True
    clock.now += 1.0
    [again] = box.lease(10, 30.0, "other")
    assert again.attempt == 2 and box.delivered(again) is True
    assert box.counts()["delivered"] == 1
