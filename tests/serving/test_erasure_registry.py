"""The erasure registry covers every store holding customer data.

A real workspace (Feast repo, decision and reward logs written by the real service, a
killed process's spool, idempotency replies, experiment assignments) is scanned file by
file — SQLite tables row by row, Parquet datasets column by column, any other file byte
by byte — for one customer. Every file naming the customer must be claimed by a
registered eraser (``holds``), and after ``maestro erase``'s orchestration none may name
it but the declared residue. A new store that keeps customer data without an eraser
fails the first check; an eraser that misses its rows fails the second.
"""

from __future__ import annotations

import fnmatch
import os
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

pytestmark = pytest.mark.integration

TARGET = "c-000004"
#: what may name an erased customer after the erasure, and why
RESIDUE = {
    "audit/erasure.jsonl": "the audit record of the erasure itself",
    "feature_repo/data/online_store.db:maestro_erased": "the tombstone that stops a "
    "pending flush from re-creating the rows (features.tombstones; kept a day)",
    "feature_repo/data/online_store.db:maestro_feature_changes": "the cache journal "
    "names the erased key so every process's cache drops it (features.cache; pruned)",
}
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def _sqlite_hits(path: Path, rel: str, needle: str) -> set[str]:
    raw = needle.encode()
    hits = set()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                if any(
                    (isinstance(v, str) and needle in v) or (isinstance(v, bytes) and raw in v)
                    for v in row
                ):
                    hits.add(f"{rel}:{table}")
                    break
    finally:
        conn.close()
    return hits


def _parquet_hit(path: Path, needle: str) -> bool:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    for column in table.columns:
        if any(needle in str(v) for v in column.to_pylist() if isinstance(v, str | bytes)):
            return True
    return False


def mentions(home: Path, customer_id: str) -> set[str]:
    """Every file (``path`` or, for SQLite, ``path:table``) under ``home`` naming the customer."""
    found: set[str] = set()
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        rel = path.relative_to(home).as_posix()
        if rel.endswith(_SQLITE_SIDE_FILES):  # read through the database itself
            continue
        with path.open("rb") as f:
            head = f.read(16)
        if head == b"SQLite format 3\x00":
            found |= _sqlite_hits(path, rel, customer_id)
        elif path.suffix == ".parquet":
            if _parquet_hit(path, customer_id):
                found.add(rel)
        elif customer_id.encode() in path.read_bytes():
            found.add(rel)
    return found


def _claimed(location: str, holds: list[str]) -> bool:
    path = location.split(":", 1)[0]
    return any(fnmatch.fnmatch(path, pattern) for pattern in holds)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str) -> Any:
    from features.workspace import init_feature_workspace
    from serving.api.schemas import DecideRequest, EventRequest, RewardRequest
    from serving.factory import build_service
    from serving.settings import Settings

    home = tmp_path_factory.mktemp("erasure-home")
    init_feature_workspace(home, customers=20, seed=5)
    (home / "experiments.yaml").write_text(
        "salt: registry\nholdout: 0.1\ndecision_points:\n  cart_abandoned:\n"
        "    variants:\n      champion: 0.5\n      rules: 0.5\n"
    )
    settings = Settings(
        home=home, mlflow_tracking_uri=mlflow_uri, feature_source="feast", roll_seconds=3600
    )
    customers = [f"c-{i:06d}" for i in range(8)]

    def traffic(service: Any, run: str) -> None:
        for cid in customers:
            body = service.decide(
                DecideRequest(
                    customer_id=cid, decision_point="cart_abandoned", request_id=f"{run}-{cid}"
                )
            )
            event_id = orjson.loads(body)["event_id"]
            service.reward(RewardRequest(event_id=event_id, reward=1.0))
            service.ingest(
                EventRequest(customer_id=cid, type="page_view", properties={"page": "home"})
            )

    from serving.state.timers import Timer
    from serving.state.timers_sqlite import SQLiteTimerStore

    timers = SQLiteTimerStore(settings.timers_db)  # pending trigger timers of each customer
    for cid in customers:
        timers.schedule([Timer(f"t-{cid}", "vip_on_pricing", 0, cid, 4e9, 1e9)])
    timers.close()
    service = build_service(settings).start()  # stops cleanly: its log is in Parquet
    traffic(service, "clean")
    service.close()
    killed = build_service(settings).start()  # killed: its spool stays on disk
    traffic(killed, "killed")
    killed.writer.close()
    killed.experiments.close()
    killed.log._stop.set()
    os.close(killed.log._lock_fd)  # what the kernel does when the process dies
    killed.log._lock_fd = None
    return settings


def test_both_ways_in_erase_the_same_stores(workspace: Any) -> None:
    from features.source import InMemoryFeatureSource
    from serving.erasure import live_erasers, workspace_erasers
    from serving.eventlog.log import EventLog
    from serving.experiments.assignments import AssignmentTable
    from serving.service.feature_layer import InMemoryFeatureLayer
    from serving.state.contacts_sqlite import SQLiteContactStore
    from serving.state.identity import SQLiteIdentityStore
    from serving.state.timers_sqlite import SQLiteTimerStore

    layer = InMemoryFeatureLayer(InMemoryFeatureSource())
    contacts = SQLiteContactStore(workspace.home / "unused" / "contacts.db")
    links = SQLiteIdentityStore(workspace.home / "unused" / "identity.db")
    timers = SQLiteTimerStore(workspace.home / "unused" / "timers.db")
    live = live_erasers(
        layer, EventLog(workspace.home / "unused"), AssignmentTable(None), contacts, links,
        timers,
    )
    contacts.close()
    links.close()
    timers.close()
    assert [e.name for e in live] == [e.name for e in workspace_erasers(workspace)]


def test_every_store_naming_a_customer_has_an_eraser(workspace: Any) -> None:
    from serving.erasure import erase_everywhere, workspace_erasers

    holds = [pattern for eraser in workspace_erasers(workspace) for pattern in eraser.holds]
    before = mentions(workspace.home, TARGET)
    # the workspace really holds the customer in each kind of store
    assert {
        "feature_repo/data/customers.parquet",
        "experiments.db:assignments",
        "logs/index.db:requests",
        "timers.db:timers",
    } <= before, before
    assert any(m.startswith("logs/decisions/") for m in before)
    assert any(m.startswith("logs/spool/") for m in before)
    unclaimed = {m for m in before if not _claimed(m, holds)}
    assert not unclaimed, f"customer data without a registered eraser: {sorted(unclaimed)}"

    record = erase_everywhere(workspace, TARGET)
    assert record["erased"]["decisions"] > 0 and record["erased"]["experiment_assignments"] > 0
    assert record["erased"]["timers"] == 1
    left = mentions(workspace.home, TARGET) - set(RESIDUE)
    assert not left, f"the erasure left the customer in {sorted(left)}"
    assert mentions(workspace.home, "c-000005"), "another customer's data must stay"
