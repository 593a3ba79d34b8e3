"""Which store holds the replicas' shared state, from the settings (the one place that
decides): SQLite files under ``$MAESTRO_HOME`` by default, PostgreSQL when
``MAESTRO_STATE_URL`` names one.

Which store serves which state, and why:

- reward claims and request-id answers, erasure tombstones → PostgreSQL: atomic
  first-claim-wins across nodes in one round trip, durable (an acknowledged claim or an
  erasure survives a crash of the store); ``/reward`` pays one round trip, ``/decide``
  none unless it carries a request id;
- experiment assignments → PostgreSQL: durable and first-writer-wins, read once per
  customer per process, written by a background thread;
- the routed-case ledger and the online store's erasure tombstones → the online store's
  Redis (:mod:`features.routed_cases`, :mod:`features.tombstones`): short-lived counts and
  marks with a TTL, read on every roster read or batched feature write, where a
  sub-millisecond round trip matters and a lost entry only costs an agent's load for a
  second or a tombstone's protection of one flush.
"""

from __future__ import annotations

from pathlib import Path

from serving.eventlog.shared_index import sqlite_index_opener
from serving.experiments.assignments import SqliteAssignmentStore
from serving.settings import Settings
from serving.state.ports import AssignmentStore, LogIndexOpener


def _state_url(settings: Settings) -> str | None:
    return None if settings.state_url is None else settings.state_url.get_secret_value()


def log_index_opener(settings: Settings, logs_dir: Path | None = None) -> LogIndexOpener:
    """Opens the workspace's shared log index for a replica."""
    url = _state_url(settings)
    if url is None:
        return sqlite_index_opener(logs_dir or settings.logs_dir)
    from serving.state.log_index_postgres import postgres_index_opener

    return postgres_index_opener(url)


def assignment_store(settings: Settings) -> AssignmentStore:
    """The workspace's sticky experiment assignments."""
    url = _state_url(settings)
    if url is None:
        return SqliteAssignmentStore(settings.home / "experiments.db")
    from serving.state.assignments_postgres import PostgresAssignmentStore

    return PostgresAssignmentStore(url)


def describe(settings: Settings) -> str:
    """Where the shared state lives, for ``maestro serve``'s start-up lines (no password)."""
    url = _state_url(settings)
    if url is None:
        return f"sqlite under {settings.home}"
    from serving.state.postgres import redact

    return redact(url)
