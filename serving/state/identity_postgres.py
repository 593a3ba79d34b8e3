"""The identity links on PostgreSQL (:class:`serving.state.identity.IdentityStore`).

Why PostgreSQL: a link is durable state every node must agree on (made once, never moved,
erased with its customer) — the database the cluster already keeps its durable shared
state in (``MAESTRO_STATE_URL``). The first link wins across nodes through the primary
key (``INSERT ... ON CONFLICT DO NOTHING``, then a read in a fresh snapshot, which sees
whichever insert committed); the journal is ordered by a sequence and taken with one
``DELETE ... RETURNING``; each erasure is one transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from serving.errors import IdentityStoreError, SharedStateError
from serving.state.identity import JOURNAL_LIMIT
from serving.state.postgres import errors_as_state_errors, execute, open_pool

T = TypeVar("T")

DDL = (
    "CREATE TABLE IF NOT EXISTS maestro_identity_links (anonymous_id TEXT PRIMARY KEY,"
    " customer_id TEXT NOT NULL, linked_at DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS maestro_identity_links_by_customer"
    " ON maestro_identity_links (customer_id)",
    "CREATE TABLE IF NOT EXISTS maestro_identity_journal (seq BIGSERIAL PRIMARY KEY,"
    " anonymous_id TEXT NOT NULL, event BYTEA NOT NULL)",
    "CREATE INDEX IF NOT EXISTS maestro_identity_journal_by_anonymous"
    " ON maestro_identity_journal (anonymous_id, seq)",
)
_WHAT = "use the identity store"


class PostgresIdentityStore:
    """The identity links and anonymous journals of every replica on every node."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        try:
            self._pool = open_pool(url, DDL, timeout=timeout)
        except SharedStateError as exc:
            raise IdentityStoreError(f"identity store: {exc}") from exc

    def _run(self, sql: str, *params: object) -> tuple[list[tuple[Any, ...]], int]:
        try:
            return execute(self._pool, _WHAT, sql, params)
        except SharedStateError as exc:
            raise IdentityStoreError(f"identity store: {exc}") from exc

    def _tx(self, fn: Callable[[Any], T]) -> T:
        """``fn(connection)`` in one transaction; driver errors → the store's error."""
        try:
            with errors_as_state_errors(_WHAT), self._pool.connection() as conn, \
                    conn.transaction():
                return fn(conn)
        except SharedStateError as exc:
            raise IdentityStoreError(f"identity store: {exc}") from exc

    def link(self, anonymous_id: str, customer_id: str) -> str:
        self._run(
            "INSERT INTO maestro_identity_links VALUES (%s, %s, %s)"
            " ON CONFLICT (anonymous_id) DO NOTHING",
            anonymous_id, customer_id, time.time(),
        )
        linked = self.resolve(anonymous_id)
        assert linked is not None  # links are erased only with their customer
        return linked

    def resolve(self, anonymous_id: str) -> str | None:
        rows, _ = self._run(
            "SELECT customer_id FROM maestro_identity_links WHERE anonymous_id = %s",
            anonymous_id,
        )
        return str(rows[0][0]) if rows else None

    def anonymous_ids(self, customer_id: str) -> list[str]:
        rows, _ = self._run(
            "SELECT anonymous_id FROM maestro_identity_links WHERE customer_id = %s"
            " ORDER BY anonymous_id COLLATE \"C\"",
            customer_id,
        )
        return [str(r[0]) for r in rows]

    def journal(self, anonymous_id: str, event: bytes) -> None:
        def run(conn: Any) -> None:
            conn.execute(
                "INSERT INTO maestro_identity_journal (anonymous_id, event) VALUES (%s, %s)",
                (anonymous_id, event),
            )
            conn.execute(
                "DELETE FROM maestro_identity_journal WHERE anonymous_id = %s AND seq <="
                " (SELECT seq FROM maestro_identity_journal WHERE anonymous_id = %s"
                " ORDER BY seq DESC OFFSET %s LIMIT 1)",
                (anonymous_id, anonymous_id, JOURNAL_LIMIT),
            )

        self._tx(run)

    def take_journal(self, anonymous_id: str) -> list[bytes]:
        rows, _ = self._run(
            "DELETE FROM maestro_identity_journal WHERE anonymous_id = %s RETURNING seq, event",
            anonymous_id,
        )
        return [bytes(event) for _, event in sorted(rows)]

    def _erase(self, journal_sql: str, links_sql: str, key: str) -> dict[str, int]:
        """The journal rows, then the links, that ``key`` selects: one transaction."""

        def run(conn: Any) -> dict[str, int]:
            events = conn.execute(journal_sql, (key,)).rowcount
            links = conn.execute(links_sql, (key,)).rowcount
            return {"identity_links": links, "anonymous_events": events}

        return self._tx(run)

    def erase_customer(self, customer_id: str) -> dict[str, int]:
        return self._erase(
            "DELETE FROM maestro_identity_journal WHERE anonymous_id IN (SELECT anonymous_id"
            " FROM maestro_identity_links WHERE customer_id = %s)",
            "DELETE FROM maestro_identity_links WHERE customer_id = %s",
            customer_id,
        )

    def erase_anonymous(self, anonymous_id: str) -> dict[str, int]:
        return self._erase(
            "DELETE FROM maestro_identity_journal WHERE anonymous_id = %s",
            "DELETE FROM maestro_identity_links WHERE anonymous_id = %s",
            anonymous_id,
        )

    def close(self) -> None:
        self._pool.close()
