"""The routed-case ledger (``features/routed_cases.py``) on SQLite and on a real
redis-server: two processes' cases add up, cases up to an agent's row time are pruned,
and very old cases expire."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from features.feast.redis_backend import redis_client
from features.routed_cases import (
    KEEP_SECONDS,
    REDIS_PREFIX,
    RedisLedger,
    RoutedCaseLedger,
    SqliteLedger,
    open_ledger,
)


@pytest.fixture(params=["sqlite", "redis"])
def ledgers(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[RoutedCaseLedger, ...]:
    """Two ledgers on one store: two processes' views of it."""
    if request.param == "sqlite":
        return SqliteLedger(tmp_path / "routed.db"), SqliteLedger(tmp_path / "routed.db")
    port = request.getfixturevalue("redis_server")
    client = redis_client(f"127.0.0.1:{port}", 2.0)
    for key in client.scan_iter(f"{REDIS_PREFIX}*"):  # the session's Feast data stays
        client.delete(key)
    return RedisLedger(client), RedisLedger(redis_client(f"127.0.0.1:{port}", 2.0))


def test_two_processes_cases_add_up_after_the_row_time(ledgers) -> None:
    one, two = ledgers
    now = time.time()
    one.record([("a", now - 10), ("a", now - 1), ("b", now - 1)])
    two.record([("a", now - 1), ("a", now)])
    assert one.counts_after({"a": now - 5, "b": now - 5}) == {"a": 3, "b": 1}
    assert two.counts_after({"a": now - 5, "b": now - 5, "c": 0.0}) == {"a": 3, "b": 1}
    # a newer report of the platform (row time) drops the cases up to it, for good
    assert one.counts_after({"a": now - 0.5, "b": now}) == {"a": 1}
    assert two.counts_after({"a": 0.0, "b": 0.0}) == {"a": 1}


def test_cases_older_than_the_keep_window_expire(ledgers) -> None:
    one, _ = ledgers
    now = time.time()
    one.record([("a", now - KEEP_SECONDS - 5), ("a", now)])
    assert one.counts_after({"a": 0.0}) == {"a": 1}
    one.record([])  # nothing to write is fine
    assert one.counts_after({}) == {}


def test_open_ledger_follows_the_online_store(tmp_path: Path, redis_server: int) -> None:
    (tmp_path / "data").mkdir()
    sqlite = open_ledger(SimpleNamespace(online_store=SimpleNamespace(type="sqlite")), tmp_path)
    assert isinstance(sqlite, SqliteLedger) and sqlite.path == tmp_path / "data" / "routed_cases.db"
    address = f"127.0.0.1:{redis_server}"
    online = SimpleNamespace(type="redis", connection_string=address)
    redis = open_ledger(SimpleNamespace(online_store=online), tmp_path)
    assert isinstance(redis, RedisLedger) and redis.client.ping()


def test_roster_sources_on_a_redis_workspace_share_their_cases(redis_workspace: Path) -> None:
    """End to end on Redis: two roster sources of one Redis workspace (two replicas, or
    two hosts) count each other's routed cases through the Redis ledger."""
    from features.agents import AgentSource

    repo = redis_workspace / "feature_repo"
    one = AgentSource(repo, max_age=0.0)
    two = AgentSource(repo, max_age=0.0)
    assert isinstance(one.ledger, RedisLedger) and isinstance(two.ledger, RedisLedger)
    agent = one.agents()[0].id

    def load(source: AgentSource) -> int:
        return next(a for a in source.agents() if a.id == agent).features["load"]

    before = load(two)
    one.assigned(agent)
    one.assigned(agent)
    assert load(one) == before + 2  # appended to Redis on this read
    assert load(two) == before + 2
