"""The shared-state protocols: the log index (reward claims, request-id answers, erasure
tombstones) and the sticky experiment assignments.

Embedded: :class:`serving.eventlog.shared_index.SharedLogIndex` and
:class:`serving.experiments.assignments.SqliteAssignmentStore` (SQLite files of one host).
Networked: :class:`serving.state.log_index_postgres.PostgresLogIndex` and
:class:`serving.state.assignments_postgres.PostgresAssignmentStore` (one PostgreSQL every
node reaches). :func:`serving.state.select.state_backend` picks them from the settings.
The contract tests (``tests/serving/test_state_contract.py``) run every implementation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class LogIndex(Protocol):
    """What the replicas of one workspace share about their logs. ``replica`` names the
    process whose claims this handle makes (its spool's name)."""

    replica: str

    def close(self) -> None: ...

    def remember_request(self, request_key: str, response: str, now: float) -> None:
        """Keep the answer given to a request id (the first answer stays)."""
        ...

    def find_request(self, request_key: str) -> str | None: ...

    def forget_requests_before(self, timestamp: float) -> None: ...

    def forget_requests(self, prefix: str) -> int:
        """Delete the answers whose request key starts with ``prefix``; return how many."""
        ...

    def is_claimed(self, event_id: str) -> bool: ...

    def claim(self, event_id: str, reward: float, now: float, mode: str) -> tuple[int, str | None]:
        """Claim ``event_id``'s reward atomically; the claim count (1: first) and the
        replica whose claim is not yet confirmed, if any."""
        ...

    def confirm(self, event_ids: Iterable[str], replica: str) -> None:
        """``replica``'s claims of ``event_ids`` are in Parquet now."""
        ...

    def release(self, replica: str) -> int:
        """Drop the claims a dead ``replica`` never wrote; return how many."""
        ...

    def record_erasure(self, customer_hash: str, at: float, keep_seconds: float) -> None:
        """Tombstone a customer (by salted hash) as erased at ``at``; prune older than
        ``keep_seconds`` before it."""
        ...

    def erasures(self) -> dict[str, float]:
        """Every live tombstone: customer hash -> erasure time."""
        ...


#: opens the log index for one replica name (the event log calls it on open and recovery)
LogIndexOpener = Callable[[str], LogIndex]


@runtime_checkable
class AssignmentStore(Protocol):
    """The sticky (scope, customer) -> variant table of the experiments."""

    def read(self, scope: str, customer_id: str) -> str | None: ...

    def insert_new(self, rows: Sequence[tuple[str, str, str, float]]) -> int:
        """Insert ``(scope, customer_id, variant, assigned_at)`` rows, keeping any row
        already there (the first writer wins); return how many were new."""
        ...

    def erase(self, customer_id: str) -> int: ...

    def close(self) -> None: ...
