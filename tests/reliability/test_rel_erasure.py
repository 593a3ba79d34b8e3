# ruff: noqa: E501
"""Item 11, erasure: ``maestro erase CUSTOMER_ID`` (the real CLI, a subprocess) on a real
Feast workspace whose logs were written by the real service — including the spool of a
"killed" process — leaves 0 rows of that customer anywhere and an audit record; every
other customer's data is untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
TARGET = "c-000004"


def _decide_some(service: Any, customers: list[str], reward_every: int = 2) -> list[str]:
    from serving.api.schemas import DecideRequest, RewardRequest

    events = []
    for i, cid in enumerate(customers):
        body = json.loads(service.decide(DecideRequest(customer_id=cid, decision_point="cart_abandoned")))
        events.append(body["event_id"])
        if i % reward_every == 0:
            service.reward(RewardRequest(event_id=body["event_id"], reward=1.0))
    return events


def _counts(home: Path) -> dict[str, Any]:
    decisions = pd.read_parquet(home / "logs" / "decisions")
    rewards = pd.read_parquet(home / "logs" / "rewards")
    offline = pd.read_parquet(home / "feature_repo" / "data" / "customers.parquet")
    return {"decisions": decisions, "rewards": rewards, "offline": offline}


def test_maestro_erase_leaves_nothing_of_the_customer(
    tmp_path: Path, rel_server: Any, figure: Any
) -> None:
    from features.feast.source import FeastFeatureSource
    from features.workspace import customers_parquet, init_feature_workspace
    from serving.factory import build_service
    from serving.settings import Settings

    home = tmp_path / "home"
    init_feature_workspace(home, customers=40, seed=5)
    repo = home / "feature_repo"
    settings = Settings(
        home=home,
        mlflow_tracking_uri=rel_server.settings.tracking_uri,  # an initialised store
        feature_source="feast",
        roll_seconds=3600,
    )
    customers = [f"c-{i:06d}" for i in range(10)] * 3
    # a server that stopped cleanly (its log is in Parquet) ...
    service = build_service(settings).start()
    clean_events = _decide_some(service, customers)
    service.close()
    # ... and one that was killed: its spool is still on disk, its lock released
    killed = build_service(settings).start()
    spool_events = _decide_some(killed, customers)
    killed.log._stop.set()
    os.close(killed.log._lock_fd)  # what the kernel does when the process dies
    killed.log._lock_fd = None
    assert list(killed.log.spool_dir.glob("seg-*.jsonl"))
    target_events = {
        e for e, c in zip(clean_events + spool_events, customers + customers, strict=True) if c == TARGET
    }

    before = _counts(home)
    assert (before["offline"]["customer_id"] == TARGET).any()
    src = FeastFeatureSource(repo, timeout=2.0)
    assert src.rows(TARGET)
    src.close()

    env = {**os.environ, "MAESTRO_HOME": str(home), "MLFLOW_TRACKING_URI": settings.tracking_uri}
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "erase", TARGET],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    after = _counts(home)

    # 0 rows of the customer anywhere
    assert not (after["decisions"]["customer_id"] == TARGET).any()
    assert not after["rewards"]["event_id"].isin(target_events).any()
    assert not (after["offline"]["customer_id"] == TARGET).any()
    src = FeastFeatureSource(repo, timeout=2.0)
    assert not src.rows(TARGET)
    others_online = sum(1 for c in customers[:10] if c != TARGET and src.rows(c))
    src.close()
    assert record["mlflow_files_with_customer"] == 0
    from training.data import load_training_set

    ts = load_training_set(home / "logs", rel_server.service.catalog, time.time() + 1e6)
    assert TARGET not in set(ts.frame["customer_id"])
    # the killed server's spool was recovered, then erased
    assert record["erased"]["recovered_spool_records"] > 0
    assert set(spool_events) - target_events <= set(after["decisions"]["event_id"])
    # everyone else untouched
    per_run = len(customers)
    mine = customers.count(TARGET)
    rewarded = [c for i, c in enumerate(customers) if i % 2 == 0]
    assert len(before["decisions"]) == per_run  # the killed one's rows were only spooled
    assert len(after["decisions"]) == 2 * (per_run - mine)
    assert len(after["rewards"]) == 2 * (len(rewarded) - rewarded.count(TARGET))
    n_offline = (before["offline"]["customer_id"] == TARGET).sum()
    assert len(after["offline"]) == len(before["offline"]) - n_offline
    assert others_online == 9
    # the audit record
    audit = (home / "audit" / "erasure.jsonl").read_text().splitlines()
    assert len(audit) == 1 and json.loads(audit[0])["customer_id"] == TARGET
    assert json.loads(audit[0])["erased"] == record["erased"]
    assert customers_parquet(repo).exists()
    figure("erasure.counts", record["erased"])
    figure("erasure.rows_left", {"decisions": 0, "rewards": 0, "offline": 0, "online": 0,
                                 "training_set": 0, "mlflow_files": 0})
