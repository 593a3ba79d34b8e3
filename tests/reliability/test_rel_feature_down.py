"""Item 6, feature store down: a live server over a real Feast workspace (SQLite online
store) while another writer holds its lock, while it is replaced by a corrupt file,
and while it is removed: 0 server errors, every
answer ``degraded``, p99 within the time budget, and the recovery time once it is back.
(Redis stopped: see ``tests/features/test_feature_redis.py``; not repeated here.)"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.integration
BUDGET_MS = 50.0  # the service's default time budget
N = 300


def _burst(srv: Any, n: int) -> dict[str, Any]:
    statuses: dict[int, int] = {}
    degraded = 0
    latencies = []
    for i in range(n):
        t0 = time.perf_counter()
        r = srv.client.post("/decide", json={"customer_id": f"c-{i % 40:06d}",
                                             "decision_point": "cart_abandoned"})
        latencies.append((time.perf_counter() - t0) * 1000)
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        if r.status_code == 200:
            degraded += int(r.json()["degraded"])
    return {"statuses": statuses, "degraded": degraded,
            "p99_ms": round(float(np.percentile(latencies, 99)), 1)}


def _recovery(srv: Any, timeout: float = 30.0) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        r = srv.client.post("/decide", json={"customer_id": "c-000001",
                                             "decision_point": "cart_abandoned"})
        if r.status_code == 200 and not r.json()["degraded"]:
            return round(time.monotonic() - t0, 3)
        time.sleep(0.01)
    raise AssertionError("did not recover")


def test_feature_store_locked_then_removed(
    tmp_path: Path, rel_server: Any, figure: Any, start_rel_server: Any
) -> None:
    from features.layer import FeastFeatureLayer
    from features.workspace import init_feature_workspace

    home = tmp_path / "home"
    init_feature_workspace(home, customers=40, seed=9)
    layer = FeastFeatureLayer(home / "feature_repo", timeout=0.02)
    # The phases below rename the online store's file under open connections of this very
    # process, which SQLite documents as unsafe: a new connection to the path may reset the
    # shared WAL index (-shm) that the agent roster's Feast connection, still on the old
    # file, has mapped, and that connection then dies of SIGBUS (seen once). Another process
    # replacing the file (what this test stands for) does not share this process's locks.
    # The roster is not under test here: its background reads stop.
    if layer.agents is not None:
        layer.agents.close()
        layer.agents = None
    db = layer.source.backend.db_path
    srv = start_rel_server(home, layer=layer, mlflow_tracking_uri=rel_server.settings.tracking_uri)
    out: dict[str, Any] = {}
    try:
        healthy = _burst(srv, 50)
        assert healthy["statuses"] == {200: 50} and healthy["degraded"] == 0
        # 1a. a writer's lock: in WAL mode readers go on reading (answers stay fresh)
        locker = sqlite3.connect(db, timeout=1.0, isolation_level=None)
        mode = locker.execute("PRAGMA journal_mode").fetchone()[0]
        locker.execute("BEGIN EXCLUSIVE")
        out["writer_lock"] = _burst(srv, 100)
        out["writer_lock"]["journal_mode"] = mode
        locker.execute("ROLLBACK")
        locker.close()
        out["writer_lock"]["recovery_seconds"] = _recovery(srv)
        # 1b. the file replaced by one that is not a database (a botched copy)
        moved = db.with_suffix(".away")
        db.rename(moved)
        db.write_bytes(b"not a database" * 1000)
        out["corrupt"] = _burst(srv, N)
        db.unlink()
        moved.rename(db)
        out["corrupt"]["recovery_seconds"] = _recovery(srv)
        # 2. removed: the file is gone
        moved = db.with_suffix(".away")
        db.rename(moved)
        out["removed"] = _burst(srv, N)
        ready = srv.client.get("/readyz")
        out["removed"]["readyz"] = ready.status_code
        moved.rename(db)
        out["removed"]["recovery_seconds"] = _recovery(srv)
    finally:
        srv.stop()
    figure("feature_down", out)
    for phase in ("corrupt", "removed"):
        got = out[phase]
        assert got["statuses"] == {200: N}, got  # 0 server errors
        assert got["degraded"] == N, got  # every answer degraded
        # the read is bounded by its 20 ms timeout, the decision by its budget; HTTP and a
        # shared 2-core machine on top: p99 within twice the budget
        assert got["p99_ms"] < 2 * BUDGET_MS, got
        assert got["recovery_seconds"] < 5.0
    assert out["removed"]["readyz"] == 503
    assert out["writer_lock"]["statuses"] == {200: 100}
    if out["writer_lock"]["journal_mode"] == "wal":
        assert out["writer_lock"]["degraded"] == 0
