"""The shared log index on PostgreSQL: reward claims, request-id answers and erasure
tombstones of every replica on every node, in one database.

Why PostgreSQL: a reward claim must be atomic and durable — the first claim per event id
wins exactly once across nodes, and an acknowledged claim survives a crash of the store
(a Redis without ``appendfsync always`` could forget it and count a retried reward
twice). ``INSERT ... ON CONFLICT ... RETURNING`` does the claim in one round trip, as
SQLite does on one host (:mod:`serving.eventlog.shared_index`, whose docstring gives the
claim/confirm/release protocol this table follows). Tombstones live here too: an erasure
is a legal record that must outlive any crash, and it is read once per roll, not per
decision. A claim costs one round trip on the ``/reward`` path; ``/decide`` touches the
index only for a request id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from serving.state.postgres import execute, open_pool

DDL = (
    "CREATE TABLE IF NOT EXISTS maestro_reward_index (event_id TEXT PRIMARY KEY,"
    " reward DOUBLE PRECISION NOT NULL, count INTEGER NOT NULL,"
    " claimed_at DOUBLE PRECISION NOT NULL, replica TEXT)",
    "CREATE INDEX IF NOT EXISTS maestro_reward_index_unconfirmed"
    " ON maestro_reward_index (replica) WHERE replica IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS maestro_requests (request_key TEXT PRIMARY KEY,"
    " response TEXT NOT NULL, answered_at DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS maestro_requests_by_time ON maestro_requests (answered_at)",
    "CREATE TABLE IF NOT EXISTS maestro_erasures (customer_hash TEXT PRIMARY KEY,"
    " erased_at DOUBLE PRECISION NOT NULL)",
)
_CLAIM = (
    "INSERT INTO maestro_reward_index AS r (event_id, reward, count, claimed_at, replica)"
    " VALUES (%s, %s, 1, %s, %s) ON CONFLICT (event_id) DO UPDATE SET count = r.count + 1,"
    " reward = r.reward + (CASE WHEN %s = 'sum' THEN excluded.reward ELSE 0 END)"
    " RETURNING count, replica"
)
#: claims confirmed per statement (one round trip each)
CONFIRM_CHUNK = 1024


class PostgresLogIndex:
    """One replica's handle on the shared index (:class:`serving.state.ports.LogIndex`)."""

    def __init__(self, url: str, replica: str, timeout: float = 10.0) -> None:
        self.replica = replica
        self._pool = open_pool(url, DDL, timeout=timeout)

    def close(self) -> None:
        self._pool.close()

    def _run(self, sql: str, *params: object) -> tuple[list[tuple], int]:
        return execute(self._pool, "use the shared log index", sql, params)

    def remember_request(self, request_key: str, response: str, now: float) -> None:
        self._run(
            "INSERT INTO maestro_requests (request_key, response, answered_at)"
            " VALUES (%s, %s, %s) ON CONFLICT (request_key) DO NOTHING",
            request_key, response, now,
        )

    def find_request(self, request_key: str) -> str | None:
        rows, _ = self._run(
            "SELECT response FROM maestro_requests WHERE request_key = %s", request_key
        )
        return rows[0][0] if rows else None

    def forget_requests_before(self, timestamp: float) -> None:
        self._run("DELETE FROM maestro_requests WHERE answered_at < %s", timestamp)

    def forget_requests(self, prefix: str) -> int:
        return self._run(
            "DELETE FROM maestro_requests WHERE left(request_key, %s) = %s", len(prefix), prefix
        )[1]

    def is_claimed(self, event_id: str) -> bool:
        rows, _ = self._run("SELECT 1 FROM maestro_reward_index WHERE event_id = %s", event_id)
        return bool(rows)

    def claim(self, event_id: str, reward: float, now: float, mode: str) -> tuple[int, str | None]:
        rows, _ = self._run(_CLAIM, event_id, reward, now, self.replica, mode)
        count, claimant = rows[0]
        return int(count), claimant

    def confirm(self, event_ids: Iterable[str], replica: str) -> None:
        ids = list(event_ids)
        for start in range(0, len(ids), CONFIRM_CHUNK):
            self._run(
                "UPDATE maestro_reward_index SET replica = NULL"
                " WHERE replica = %s AND event_id = ANY(%s)",
                replica, ids[start : start + CONFIRM_CHUNK],
            )

    def release(self, replica: str) -> int:
        return self._run("DELETE FROM maestro_reward_index WHERE replica = %s", replica)[1]

    def record_erasure(self, customer_hash: str, at: float, keep_seconds: float) -> None:
        self._run(
            "WITH pruned AS (DELETE FROM maestro_erasures WHERE erased_at < %s)"
            " INSERT INTO maestro_erasures (customer_hash, erased_at) VALUES (%s, %s)"
            " ON CONFLICT (customer_hash) DO UPDATE SET erased_at = excluded.erased_at",
            at - keep_seconds, customer_hash, at,
        )

    def erasures(self) -> dict[str, float]:
        rows, _ = self._run("SELECT customer_hash, erased_at FROM maestro_erasures")
        return {h: float(t) for h, t in rows}


def postgres_index_opener(url: str) -> Callable[[str], PostgresLogIndex]:
    """Opens the index at ``url`` for a replica (one pool per handle)."""

    def open_index(replica: str) -> PostgresLogIndex:
        return PostgresLogIndex(url, replica)

    return open_index
