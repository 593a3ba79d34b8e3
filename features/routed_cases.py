"""The routed-case ledger: cases routed to each agent, shared by every process serving a
workspace, so an agent's load counts the cases *any* replica routed.

The contact-centre platform reports an agent's load to Feast (push source ``agent_push``)
with an event time ``T``. Cases Maestro routed after ``T`` are not in that load yet, so
:class:`features.agents.AgentSource` takes an agent's load as *the store's load plus the
cases routed to it after* ``T`` (by this or any other process), and forgets the cases
routed before ``T`` (the platform has counted them). Each process records the cases it
routes in memory at once and appends them to the ledger on its next roster read (at most
``max_age`` later, default 1 s); the same read counts every process's cases. So a case
routed by another replica reaches this one's view of the load within two roster reads.

Two ledgers, one per online store (:func:`open_ledger` picks the workspace's):

- SQLite: a ``routed_cases`` table in ``data/routed_cases.db`` beside the online store;
- Redis: one sorted set per agent (``maestro:routed:<agent_id>``, scored by routing time).

Feast keeps a row's event time to the second, so cases routed in the second of a report
count on top of it once more: the safe side (an agent looks busier, for at most a
second), never an agent past capacity. Entries routed before the agent's row time are
pruned on each read, and every entry after
:data:`KEEP_SECONDS` (a platform that stopped reporting load). Times are epoch seconds of
the machines' clocks: between hosts they are as close as NTP keeps them.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

#: entries older than this are dropped even while an agent's row is older still
KEEP_SECONDS = 3600.0
REDIS_PREFIX = "maestro:routed:"
#: reads between two prunes of entries older than KEEP_SECONDS (SQLite: a table scan)
_PRUNE_EVERY = 60


class RoutedCaseLedger(Protocol):
    """Where processes share the cases they routed."""

    def record(self, cases: Sequence[tuple[str, float]]) -> None:
        """Append routed cases ``(agent_id, routed_at)``."""
        ...

    def counts_after(self, since: Mapping[str, float]) -> dict[str, int]:
        """Per agent of ``since``: the cases routed after ``since[agent]`` (absent: none);
        older entries of those agents are pruned."""
        ...


class SqliteLedger:
    """The ledger as a table of a small SQLite database (WAL; one host's processes)."""

    def __init__(self, path: Path | str, timeout: float = 2.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._reads = 0
        conn = self._connect()
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS routed_cases "
                "(agent_id TEXT NOT NULL, routed_at REAL NOT NULL)"
            )
            conn.execute(
                "CREATE INDEX IF NOT EXISTS routed_cases_by_agent "
                "ON routed_cases (agent_id, routed_at)"
            )
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)

    def record(self, cases: Sequence[tuple[str, float]]) -> None:
        if not cases:
            return
        conn = self._connect()
        try:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("INSERT INTO routed_cases VALUES (?, ?)", cases)
        finally:
            conn.close()

    def counts_after(self, since: Mapping[str, float]) -> dict[str, int]:
        conn = self._connect()
        try:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                if self._reads % _PRUNE_EVERY == 0:  # a scan: not on every read
                    conn.execute(
                        "DELETE FROM routed_cases WHERE routed_at < ?",
                        (time.time() - KEEP_SECONDS,),
                    )
                self._reads += 1
                conn.executemany(
                    "DELETE FROM routed_cases WHERE agent_id = ? AND routed_at <= ?",
                    list(since.items()),
                )
                rows = conn.execute(
                    "SELECT agent_id, count(*) FROM routed_cases GROUP BY agent_id"
                ).fetchall()
        finally:
            conn.close()
        return {agent: n for agent, n in rows if agent in since}


class RedisLedger:
    """The ledger as one sorted set per agent in the online store's Redis (every host)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._member = f"{uuid.uuid4().hex}:"  # this process's entries stay distinct
        self._seq = 0

    def record(self, cases: Sequence[tuple[str, float]]) -> None:
        if not cases:
            return
        pipe = self.client.pipeline(transaction=False)
        for agent, at in cases:
            self._seq += 1
            key = REDIS_PREFIX + agent
            pipe.zadd(key, {f"{self._member}{self._seq}": at})
            pipe.expire(key, int(KEEP_SECONDS))
        pipe.execute()

    def counts_after(self, since: Mapping[str, float]) -> dict[str, int]:
        agents = list(since)
        pipe = self.client.pipeline(transaction=False)
        floor = time.time() - KEEP_SECONDS
        for agent in agents:
            key = REDIS_PREFIX + agent
            pipe.zremrangebyscore(key, "-inf", max(since[agent], floor))
            pipe.zcard(key)
        replies = pipe.execute()
        return {a: int(n) for a, n in zip(agents, replies[1::2], strict=True) if n}


def open_ledger(store_config: Any, repo_path: Path, timeout: float = 2.0) -> RoutedCaseLedger:
    """The ledger of a Feast repo: beside its SQLite online store, or in its Redis."""
    from features.feast.redis_backend import redis_client

    online = store_config.online_store
    if online.type == "redis":
        return RedisLedger(redis_client(online.connection_string, timeout))
    return SqliteLedger(repo_path / "data" / "routed_cases.db", timeout)
