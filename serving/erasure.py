"""``maestro erase CUSTOMER_ID``: erase one customer from the whole workspace, offline.

What is erased (each count goes into the audit record):

- the online store and the offline feature data (:func:`features.erasure.erase_customer`:
  the customer's rows in every Feast view table / Redis hash, and the offline Parquet);
- the decision and reward logs: spools of dead processes are rolled to Parquet first
  (:meth:`serving.eventlog.log.EventLog.recover`), then every Parquet part is rewritten
  without the customer's decisions and the rewards of those decisions;
- the experiment assignments (``$MAESTRO_HOME/experiments.db``), when there is one.

Training sets are not stored: ``maestro train`` reads the logs above at each run, so
erasing the logs erases them. MLflow holds models, parameters and metrics, never rows; the
command checks that claim by scanning the artefact store and the tracking database for the
customer id and records what it found (``mlflow_files_with_customer``: expected 0).

A *running* server holds its own live spool: erase through it with
``DELETE /customers/{id}`` (it rolls its spool, then erases the same way); this command
erases what is on disk, including what a killed server left.

Every call appends one JSON line to ``$MAESTRO_HOME/audit/erasure.jsonl`` (time, customer
id, counts, the operator's user name) and writes nothing else about the customer.
"""

from __future__ import annotations

import getpass
import os
import time
from pathlib import Path
from typing import Any

import orjson

from features.erasure import erase_customer
from features.feast.source import open_feature_source
from serving.settings import Settings


def _feature_store(settings: Settings, customer_id: str) -> dict[str, int]:
    if not (settings.feature_repo / "feature_store.yaml").exists():
        return {}

    source = open_feature_source(settings.feature_repo)
    try:
        counts = erase_customer(source, customer_id)
    finally:
        source.close()
    return {
        "online_values": counts.online_values,
        "offline_rows": counts.offline_rows,
        "pending_rows": counts.pending_rows,
    }


def _logs(settings: Settings, customer_id: str) -> dict[str, int]:
    from serving.eventlog.log import EventLog

    log = EventLog(settings.logs_dir)
    if not settings.logs_dir.exists():
        return {"decisions": 0, "rewards": 0, "recovered_spool_records": 0}
    log.spool_root.mkdir(parents=True, exist_ok=True)
    recovered = log.recover()  # dead processes' spools → Parquet, then erased below
    counts = log.erase_customer(customer_id)
    return {**counts, "recovered_spool_records": recovered}


def _experiments(settings: Settings, customer_id: str) -> dict[str, int]:
    path = settings.home / "experiments.db"
    if not path.exists():
        return {}
    from serving.experiments.assignments import AssignmentTable

    table = AssignmentTable(path)
    try:
        return {"experiment_assignments": int(table.erase(customer_id))}
    finally:
        table.close()


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


def erase_everywhere(settings: Settings, customer_id: str) -> dict[str, Any]:
    """Erase ``customer_id`` from the workspace; return (and audit) the counts."""
    if not customer_id or len(customer_id) > 128 or any(ord(c) < 32 for c in customer_id):
        raise ValueError(f"invalid customer id {customer_id!r}")
    counts: dict[str, int] = {}
    counts.update(_feature_store(settings, customer_id))
    counts.update(_logs(settings, customer_id))
    counts.update(_experiments(settings, customer_id))
    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "action": "erase",
        "customer_id": customer_id,
        "erased": counts,
        "mlflow_files_with_customer": _mlflow_mentions(settings, customer_id),
        "operator": getpass.getuser(),
        "pid": os.getpid(),
    }
    audit = settings.home / "audit"
    audit.mkdir(parents=True, exist_ok=True)
    fd = os.open(audit / "erasure.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, orjson.dumps(record) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return record
