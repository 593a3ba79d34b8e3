"""The sticky experiment assignments on PostgreSQL (:class:`serving.state.ports.AssignmentStore`).

Why PostgreSQL: an assignment is durable (a customer must keep their variant for the
experiment's life, across restarts of every node) and the first writer must win exactly
once across nodes (``INSERT ... ON CONFLICT DO NOTHING``); latency matters little, since
each process reads a customer's row once and then serves it from memory
(:class:`serving.experiments.assignments.AssignmentTable`), and first assignments are
written by a background thread in one statement per flush.
"""

from __future__ import annotations

from collections.abc import Sequence

from serving.state.postgres import execute, open_pool

DDL = (
    "CREATE TABLE IF NOT EXISTS maestro_assignments (scope TEXT NOT NULL,"
    " customer_id TEXT NOT NULL, variant TEXT NOT NULL,"
    " assigned_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (scope, customer_id))",
    "CREATE INDEX IF NOT EXISTS maestro_assignments_by_customer"
    " ON maestro_assignments (customer_id)",
)


class PostgresAssignmentStore:
    """The assignment table of every replica on every node, in one database."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self._pool = open_pool(url, DDL, timeout=timeout)

    def _run(self, sql: str, *params: object) -> tuple[list[tuple], int]:
        return execute(self._pool, "use the experiment assignments", sql, params)

    def read(self, scope: str, customer_id: str) -> str | None:
        rows, _ = self._run(
            "SELECT variant FROM maestro_assignments WHERE scope = %s AND customer_id = %s",
            scope, customer_id,
        )
        return rows[0][0] if rows else None

    def insert_new(self, rows: Sequence[tuple[str, str, str, float]]) -> int:
        if not rows:
            return 0
        scopes, customers, variants, times = (list(column) for column in zip(*rows, strict=True))
        return self._run(
            "INSERT INTO maestro_assignments (scope, customer_id, variant, assigned_at)"
            " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::float8[])"
            " ON CONFLICT (scope, customer_id) DO NOTHING",
            scopes, customers, variants, times,
        )[1]

    def erase(self, customer_id: str) -> int:
        return self._run("DELETE FROM maestro_assignments WHERE customer_id = %s", customer_id)[1]

    def close(self) -> None:
        self._pool.close()
