"""One contract suite for every trigger timer store (the embedded SQLite one and Redis on
a real redis-server): schedule replaces a run, cancel by customer and trigger, leased
claims, done by the claim's token, erasure; and two OS processes claiming from one store
fire each timer exactly once, and a replica killed mid-fire leaves its timers to fire late."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.state.timers import Timer, TimerStore

NOW = 1_800_000_000.0
WORKER = Path(__file__).parents[1] / "support" / "timer_worker.py"


def spec_of(kind: str, tmp_path: Path, redis_port: int | None) -> dict:
    if kind == "sqlite":
        return {"store": "sqlite", "path": str(tmp_path / "timers.db")}
    return {"store": "redis", "url": f"redis://127.0.0.1:{redis_port}/0",
            "prefix": f"t{uuid.uuid4().hex}:"}


def open_store(spec: dict) -> TimerStore:
    sys.path.insert(0, str(WORKER.parent))
    from timer_worker import open_store as opener

    store: TimerStore = opener(spec)
    return store


@pytest.fixture(params=["sqlite", "redis"])
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> dict:
    port = request.getfixturevalue("redis_server") if request.param == "redis" else None
    return spec_of(request.param, tmp_path, port)


@pytest.fixture
def store(spec: dict) -> Iterator[TimerStore]:
    s = open_store(spec)
    yield s
    s.close()


def run(trigger: str, cid: str, *dues: float) -> list[Timer]:
    return [Timer(uuid.uuid4().hex, trigger, i, cid, due, NOW) for i, due in enumerate(dues)]


def test_store_satisfies_the_protocol(store: TimerStore) -> None:
    assert isinstance(store, TimerStore)


def test_only_due_timers_are_claimed_oldest_first(store: TimerStore) -> None:
    late, early = run("t", "c1", NOW + 10), run("t", "c2", NOW + 5)
    store.schedule(late)
    store.schedule(early)
    assert store.claim(NOW + 4, "r1", 30, 10) == []
    claimed = store.claim(NOW + 11, "r1", 30, 10)
    assert [t.timer_id for t in claimed] == [early[0].timer_id, late[0].timer_id]
    assert all(t.attempts == 1 and t.token for t in claimed)
    assert (claimed[0].trigger, claimed[0].customer_id, claimed[0].step) == ("t", "c2", 0)
    assert claimed[0].due_at == pytest.approx(NOW + 5, abs=1e-6)


def test_a_claimed_timer_is_not_claimed_again_until_its_lease_runs_out(store: TimerStore) -> None:
    store.schedule(run("t", "c1", NOW))
    first = store.claim(NOW, "r1", 30, 10)
    assert len(first) == 1
    assert store.claim(NOW + 29, "r2", 30, 10) == []
    again = store.claim(NOW + 31, "r2", 30, 10)
    assert [t.timer_id for t in again] == [first[0].timer_id]
    assert again[0].attempts == 2 and again[0].token != first[0].token
    assert store.done(first[0]) is False  # the first claim lost its lease
    assert store.done(again[0]) is True
    assert store.pending() == 0
    assert store.claim(NOW + 100, "r3", 30, 10) == []


def test_schedule_replaces_the_customers_pending_run_of_that_trigger(store: TimerStore) -> None:
    store.schedule(run("t", "c1", NOW + 1, NOW + 2))
    store.schedule(run("other", "c1", NOW + 1))
    new = run("t", "c1", NOW + 3)
    assert store.schedule(new) == 2
    assert store.pending() == 2
    ids = {t.timer_id for t in store.claim(NOW + 10, "r", 30, 10)}
    assert new[0].timer_id in ids and len(ids) == 2


def test_cancel_removes_only_the_customers_named_triggers(store: TimerStore) -> None:
    store.schedule(run("a", "c1", NOW + 1, NOW + 2))
    store.schedule(run("b", "c1", NOW + 1))
    store.schedule(run("a", "c2", NOW + 1))
    assert store.cancel("c1", ["a"]) == 2
    assert store.cancel("c1", ["a"]) == 0
    assert store.cancel("c1", []) == 0
    left = {(t.trigger, t.customer_id) for t in store.claim(NOW + 10, "r", 30, 10)}
    assert left == {("b", "c1"), ("a", "c2")}


def test_a_cancelled_claimed_timer_cannot_be_marked_done(store: TimerStore) -> None:
    store.schedule(run("a", "c1", NOW))
    (claimed,) = store.claim(NOW, "r", 30, 10)
    assert store.cancel("c1", ["a"]) == 1
    assert store.done(claimed) is False
    assert store.pending() == 0


def test_claim_limit_and_erasure(store: TimerStore) -> None:
    for i in range(5):
        store.schedule(run("a", f"c{i}", NOW))
    store.schedule(run("b", "c0", NOW))
    assert len(store.claim(NOW, "r", 30, 2)) == 2
    assert store.erase_customer("c0") == 2
    assert store.pending() == 4


def test_timers_survive_reopening_the_store(spec: dict) -> None:
    first = open_store(spec)
    first.schedule(run("a", "c1", NOW + 1, NOW + 2))
    first.close()
    second = open_store(spec)
    try:
        assert second.pending() == 2
        assert len(second.claim(NOW + 5, "r", 30, 10)) == 2
    finally:
        second.close()


def _worker(spec: dict, replica: str, out: Path, **extra: object) -> subprocess.Popen[bytes]:
    body = {**spec, "replica": replica, "out": str(out), **extra}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), str(WORKER.parent)])}
    return subprocess.Popen([sys.executable, str(WORKER), json.dumps(body)], env=env)


def test_two_processes_fire_each_timer_exactly_once(spec: dict, tmp_path: Path) -> None:
    store = open_store(spec)
    n = 400
    now = time.time()
    for i in range(n):  # due over a second once both have started, so both claim
        store.schedule(run("t", f"c{i}", now + 1.5 + i / n))
    until = time.time() + 4.0
    outs = [tmp_path / "a.txt", tmp_path / "b.txt"]
    procs = [_worker(spec, f"r{k}", out, lease=30.0, until=until) for k, out in enumerate(outs)]
    for p in procs:
        assert p.wait(timeout=60) == 0
    fired = [line.split()[0] for out in outs for line in out.read_text().splitlines()]
    per_worker = [len(out.read_text().splitlines()) for out in outs]
    assert len(fired) == n and set(Counter(fired).values()) == {1}
    assert min(per_worker) > 0, per_worker  # both replicas took part
    assert store.pending() == 0
    store.close()


def test_a_replica_killed_mid_fire_leaves_its_timers_to_fire_late(
    spec: dict, tmp_path: Path
) -> None:
    store = open_store(spec)
    now = time.time()
    ids = set()
    for i in range(10):
        timers = run("t", f"c{i}", now)
        ids.add(timers[0].timer_id)
        store.schedule(timers)
    dead = _worker(spec, "dies", tmp_path / "dead.txt", lease=1.0, until=now + 10,
                   die_after_claim=True)
    assert dead.wait(timeout=30) == 9
    claimed = {line.split()[1] for line in (tmp_path / "dead.txt").read_text().splitlines()}
    assert claimed == ids
    assert store.claim(time.time(), "early", 1.0, 50) == []  # still leased to the dead one
    time.sleep(1.1)
    live = _worker(spec, "live", tmp_path / "live.txt", lease=30.0, until=time.time() + 1.5)
    assert live.wait(timeout=30) == 0
    rows = [line.split() for line in (tmp_path / "live.txt").read_text().splitlines()]
    assert {r[0] for r in rows} == ids and len(rows) == len(ids)
    assert {r[1] for r in rows} == {"2"}  # the second attempt: late, not never
    assert store.pending() == 0
    store.close()


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_the_settings_pick_the_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest
                                     ) -> None:
    from serving.factory import timer_store
    from serving.settings import Settings

    extra = {}
    if kind == "redis":
        port = request.getfixturevalue("redis_server")
        extra = {"timer_store": "redis", "timer_redis_url": f"redis://127.0.0.1:{port}/3"}
    store = timer_store(Settings(home=tmp_path, **extra))
    try:
        assert type(store).__name__ == {"sqlite": "SQLiteTimerStore",
                                        "redis": "RedisTimerStore"}[kind]
        timers = run("settings", uuid.uuid4().hex, NOW)
        store.schedule(timers)
        claimed = store.claim(NOW, "r", 30, 1000)
        assert timers[0].timer_id in {t.timer_id for t in claimed}
        assert (tmp_path / "timers.db").exists() is (kind == "sqlite")
    finally:
        store.close()
