"""Erasure of one customer everywhere, in one orchestration over every store that holds
customer data.

Each store offers a :class:`core.erasure.CustomerEraser` (a ``name`` and ``erase(customer_id)
-> counts``); :func:`erase_with` runs a list of them in order and merges their counts.
Two lists, one per way in, cover the same stores (a test checks it):

- :func:`live_erasers`, for ``DELETE /customers/{id}`` on a running service: the service's
  feature layer (online rows, offline Parquet, its pending event rows), its event log (its
  own spool rolled first; a tombstone makes other replicas' rolls drop the rows) and its
  experiment assignments;
- :func:`workspace_erasers`, for ``maestro erase CUSTOMER_ID`` offline: the same stores
  opened from ``$MAESTRO_HOME``; the spools of dead processes are rolled to Parquet first.

Both also forget the customer's idempotency replies (``logs/index.db``), uncounted: they are
copies of answers, not rows. Routed cases (agent ids and times) and the agent roster hold
no customer data. Training sets are not stored: ``maestro train`` reads the logs at each
run, so erasing the logs erases them. MLflow holds models, parameters and metrics, never
rows; :func:`erase_everywhere` checks that claim by scanning the artefact store and the
tracking database for the customer id (``mlflow_files_with_customer``: expected 0).

Every offline erasure appends one JSON line to ``$MAESTRO_HOME/audit/erasure.jsonl`` (time,
customer id, counts, the operator's user name) and writes nothing else about the customer.
"""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

import orjson

from core.erasure import CustomerEraser
from features.erasure import WorkspaceFeatureEraser
from serving.eventlog.log import EventLog
from serving.eventlog.tombstones import forget_requests
from serving.experiments.assignments import AssignmentTable
from serving.service.feature_layer import FeatureWriter
from serving.settings import Settings
from serving.state.contacts import ContactStore
from serving.state.contacts_sqlite import SQLiteContactStore
from serving.state.identity import (
    ANONYMOUS_PREFIX,
    IdentityStore,
    anonymous_profile,
    identity_store,
)
from serving.state.ports import AssignmentStore, LogIndexOpener
from serving.state.select import assignment_store, log_index_opener
from serving.state.timers import TimerStore
from serving.state.timers_sqlite import SQLiteTimerStore


class WorkspaceEraser(CustomerEraser, Protocol):
    """A store of the workspace, erased offline; ``holds``: the files under
    ``$MAESTRO_HOME`` (globs) whose customer rows it erases."""

    holds: ClassVar[tuple[str, ...]]


def erase_with(erasers: Sequence[CustomerEraser], customer_id: str) -> dict[str, int]:
    """Erase ``customer_id`` from every store of ``erasers``, in order; their merged counts.
    With an :class:`IdentityEraser` among them, the anonymous ids linked to the customer are
    erased from every store too (their rows are the customer's), then the links."""
    linkers = [e for e in erasers if isinstance(e, IdentityEraser)]
    linked = {anonymous_profile(a) for e in linkers for a in e.linked(customer_id)}
    ids = [customer_id, *sorted(linked)]
    counts: dict[str, int] = {}
    for eraser in erasers:
        if isinstance(eraser, IdentityEraser):
            continue
        for one in ids:
            for kind, n in eraser.erase(one).items():
                counts[kind] = counts.get(kind, 0) + n
    for linker in linkers:
        counts.update(linker.erase(customer_id))
    return counts


class IdentityEraser:
    """The identity links (:class:`serving.state.identity.IdentityStore`): the customer's
    links and anonymous journals, or one anonymous id's link and journal when the id
    erased is its profile (``anon:<id>``)."""

    name = "identity_links"

    def __init__(self, store: IdentityStore) -> None:
        self.store = store

    def linked(self, customer_id: str) -> list[str]:
        return self.store.anonymous_ids(customer_id)

    def erase(self, customer_id: str) -> dict[str, int]:
        if customer_id.startswith(ANONYMOUS_PREFIX):
            return self.store.erase_anonymous(customer_id.removeprefix(ANONYMOUS_PREFIX))
        return self.store.erase_customer(customer_id)


class WorkspaceIdentityEraser(IdentityEraser):
    """The workspace's identity store, offline (the embedded one, or the Redis or
    PostgreSQL it names)."""

    holds: ClassVar[tuple[str, ...]] = ("identity.db", "identity.db-wal", "identity.db-shm")

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._store: IdentityStore | None = None

    @property  # type: ignore[override]
    def store(self) -> IdentityStore:
        if self._store is None:
            self._store = identity_store(self.settings)
        return self._store

    def linked(self, customer_id: str) -> list[str]:
        if self._absent():
            return []
        return super().linked(customer_id)

    def erase(self, customer_id: str) -> dict[str, int]:
        if self._absent():
            return {}
        try:
            return super().erase(customer_id)
        finally:
            self.store.close()
            self._store = None

    def _absent(self) -> bool:
        s = self.settings
        embedded = s.contact_store == "sqlite" and s.state_url is None
        return embedded and not (s.home / "identity.db").exists()


class FeatureLayerEraser:
    """A service's feature layer (:class:`~serving.service.feature_layer.FeatureWriter`)."""

    name = "feature_store"

    def __init__(self, layer: FeatureWriter) -> None:
        self.layer = layer

    def erase(self, customer_id: str) -> dict[str, int]:
        return dict(self.layer.erase(customer_id))


class LiveLogEraser:
    """A running service's event log: its spool is rolled, then every Parquet part is
    rewritten without the customer's decisions and their rewards."""

    name = "decision_logs"

    def __init__(self, log: EventLog) -> None:
        self.log = log

    def erase(self, customer_id: str) -> dict[str, int]:
        counts = self.log.erase_customer(customer_id)
        with self.log.index_session() as index:
            forget_requests(index, customer_id)
        return counts


class WorkspaceLogEraser:
    """The workspace's logs, offline: dead processes' spools are recovered to Parquet
    (``recovered_spool_records``), then erased as a live log erases them. A running
    server holds its own live spool: erase through it (``DELETE /customers/{id}``)."""

    name = "decision_logs"
    holds: ClassVar[tuple[str, ...]] = (
        "logs/decisions/*.parquet",
        "logs/rewards/*.parquet",
        "logs/spool/**",
        "logs/index.db",
    )

    def __init__(
        self, logs_dir: Path, index: LogIndexOpener | None = None, dataset: str | None = None
    ) -> None:
        self.logs_dir = Path(logs_dir)
        self.index = index
        self.dataset = dataset  # the rolled logs, when not under ``logs_dir``

    def erase(self, customer_id: str) -> dict[str, int]:
        if not self.logs_dir.exists() and self.index is None and self.dataset is None:
            return {"decisions": 0, "rewards": 0, "recovered_spool_records": 0}
        log = EventLog(self.logs_dir, index=self.index, dataset=self.dataset)
        log.spool_root.mkdir(parents=True, exist_ok=True)
        recovered = log.recover()  # dead processes' spools → Parquet, then erased below
        counts = LiveLogEraser(log).erase(customer_id)
        return {**counts, "recovered_spool_records": recovered}


class AssignmentEraser:
    """A running service's sticky experiment assignments."""

    name = "experiment_assignments"

    def __init__(self, table: AssignmentTable) -> None:
        self.table = table

    def erase(self, customer_id: str) -> dict[str, int]:
        return {"experiment_assignments": int(self.table.erase(customer_id))}


class WorkspaceAssignmentEraser:
    """The workspace's assignment table (``experiments.db``), when there is one."""

    name = "experiment_assignments"
    holds: ClassVar[tuple[str, ...]] = ("experiments.db",)

    def __init__(self, path: Path, store: Callable[[], AssignmentStore] | None = None) -> None:
        self.path = Path(path)
        self.store = store

    def erase(self, customer_id: str) -> dict[str, int]:
        if self.store is None and not self.path.exists():
            return {}
        table = AssignmentTable(self.path if self.store is None else self.store())
        try:
            return AssignmentEraser(table).erase(customer_id)
        finally:
            table.close()


class ContactEraser:
    """A contact store (:class:`serving.state.contacts.ContactStore`): the customer's contact
    history and pending activations."""

    name = "contact_history"

    def __init__(self, store: ContactStore) -> None:
        self.store = store

    def erase(self, customer_id: str) -> dict[str, int]:
        return dict(self.store.erase_customer(customer_id))


class WorkspaceContactEraser:
    """The workspace's contact store, offline (the embedded one, or the Redis it names)."""

    name = "contact_history"
    holds: ClassVar[tuple[str, ...]] = ("contacts.db", "contacts.db-wal", "contacts.db-shm")

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def erase(self, customer_id: str) -> dict[str, int]:
        settings = self.settings
        if settings.contact_store == "sqlite" and not settings.contacts_db.exists():
            return {}
        store: ContactStore
        if settings.contact_store == "redis":
            from serving.state.contacts_redis import RedisContactStore

            store = RedisContactStore(str(settings.contact_redis_url))
        else:
            store = SQLiteContactStore(settings.contacts_db)
        try:
            return ContactEraser(store).erase(customer_id)
        finally:
            store.close()


class TimerEraser:
    """A trigger timer store (:class:`serving.state.timers.TimerStore`): the customer's
    pending trigger timers."""

    name = "trigger_timers"

    def __init__(self, store: TimerStore) -> None:
        self.store = store

    def erase(self, customer_id: str) -> dict[str, int]:
        return {"timers": self.store.erase_customer(customer_id)}


class WorkspaceTimerEraser:
    """The workspace's trigger timer store, offline (the embedded one, or its Redis)."""

    name = "trigger_timers"
    holds: ClassVar[tuple[str, ...]] = ("timers.db", "timers.db-wal", "timers.db-shm")

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def erase(self, customer_id: str) -> dict[str, int]:
        settings = self.settings
        if settings.timer_store == "sqlite" and not settings.timers_db.exists():
            return {}
        store: TimerStore
        if settings.timer_store == "redis":
            from serving.state.timers_redis import RedisTimerStore

            store = RedisTimerStore(str(settings.timer_redis_url))
        else:
            store = SQLiteTimerStore(settings.timers_db)
        try:
            return TimerEraser(store).erase(customer_id)
        finally:
            store.close()


def live_erasers(
    features: FeatureWriter,
    log: EventLog,
    assignments: AssignmentTable | None,
    contacts: ContactStore | None = None,
    identity: IdentityStore | None = None,
    timers: TimerStore | None = None,
) -> list[CustomerEraser]:
    """The erasers of a running service's stores (no assignments: no experiments; no
    contact store: no contact policy)."""
    erasers: list[CustomerEraser] = [FeatureLayerEraser(features), LiveLogEraser(log)]
    if assignments is not None:
        erasers.append(AssignmentEraser(assignments))
    if contacts is not None:
        erasers.append(ContactEraser(contacts))
    if identity is not None:
        erasers.append(IdentityEraser(identity))
    if timers is not None:
        erasers.append(TimerEraser(timers))
    return erasers


def workspace_erasers(settings: Settings) -> list[WorkspaceEraser]:
    """The registry of the workspace's stores holding customer data, one eraser each."""
    return [
        WorkspaceFeatureEraser(settings.feature_repo),
        WorkspaceLogEraser(settings.logs_dir, log_index_opener(settings), settings.log_dataset),
        WorkspaceAssignmentEraser(
            settings.home / "experiments.db",
            None if settings.state_url is None else (lambda: assignment_store(settings)),
        ),
        WorkspaceContactEraser(settings),
        WorkspaceIdentityEraser(settings),
        WorkspaceTimerEraser(settings),
    ]


def _mlflow_mentions(settings: Settings, customer_id: str) -> int:
    """Files of the MLflow store (artefacts, SQLite database) naming the customer."""
    needle = customer_id.encode()
    roots: list[Path] = [settings.home / "mlartifacts", settings.home / "mlruns"]
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        roots.append(db)
        roots.append(db.parent / "mlartifacts")
    hits = 0
    for root in roots:
        files = [root] if root.is_file() else (root.rglob("*") if root.is_dir() else [])
        for path in files:
            small = path.is_file() and path.stat().st_size < 512 * 1024 * 1024
            if small and needle in path.read_bytes():
                hits += 1
    return hits


def _audit(settings: Settings, record: dict[str, Any]) -> None:
    audit = settings.home / "audit"
    audit.mkdir(parents=True, exist_ok=True)
    fd = os.open(audit / "erasure.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, orjson.dumps(record) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


def erase_everywhere(settings: Settings, customer_id: str) -> dict[str, Any]:
    """``maestro erase``: erase ``customer_id`` from the workspace; return (and audit) the
    record of what was erased."""
    if not customer_id or len(customer_id) > 128 or any(ord(c) < 32 for c in customer_id):
        raise ValueError(f"invalid customer id {customer_id!r}")
    counts = erase_with(workspace_erasers(settings), customer_id)
    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "action": "erase",
        "customer_id": customer_id,
        "erased": counts,
        "mlflow_files_with_customer": _mlflow_mentions(settings, customer_id),
        "operator": getpass.getuser(),
        "pid": os.getpid(),
    }
    _audit(settings, record)
    return record
