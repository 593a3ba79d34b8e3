"""Item 1, crash: ``maestro serve --engine uvicorn`` (a real process) is killed with
SIGKILL at random points while clients send decisions and rewards, retrying each with
the same ``request_id`` / reward until acknowledged; the server is restarted each time.

Then: 0 acknowledged decisions lost, 0 acknowledged rewards lost, 0 rewards counted twice
in training, every SQLite and Parquet file readable. Default: 2,000 decisions and 3 kills;
``slow``: 10,000 decisions and 8 kills.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
KEY = "crash-key"


def _start(home: Path, port: int, tracking_uri: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "MAESTRO_HOME": str(home),
        "MAESTRO_FEATURE_SOURCE": "memory",
        "MAESTRO_ROLL_SECONDS": "0.7",  # kills land before, during and after rolls
        "MAESTRO_API_KEY": KEY,
        "MLFLOW_TRACKING_URI": tracking_uri,
    }
    env.pop("MAESTRO_KILL_SWITCH", None)
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--engine", "uvicorn", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _retry(client: httpx.Client, path: str, body: dict[str, Any], stop: threading.Event) -> Any:
    """POST until a 2xx/4xx answer arrives (connection errors and 503s: retry)."""
    attempts = 0
    while True:
        attempts += 1
        try:
            r = client.post(path, json=body)
            if r.status_code < 500:
                return r, attempts
        except httpx.HTTPError:
            pass
        if stop.is_set() and attempts > 2000:
            raise RuntimeError(f"{path} never answered")
        time.sleep(0.02)


def _crash_run(tmp_path: Path, tracking_uri: str, n: int, kills: int, seed: int) -> dict[str, Any]:
    from live_servers import free_port, wait_http  # type: ignore[import-not-found]

    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start(home, port, tracking_uri)
    wait_http(f"{base}/healthz", timeout=180)
    acked: dict[str, str] = {}  # request_id -> event_id
    rewarded: set[str] = set()
    stop = threading.Event()
    rng = random.Random(seed)
    retries = {"decide": 0, "reward": 0}
    lock = threading.Lock()

    def client_loop(worker: int, count: int) -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"},
                          timeout=5) as c:
            for i in range(count):
                rid = f"w{worker}-{i}"
                body = {"customer_id": f"c-{i % 200:06d}", "decision_point": "cart_abandoned",
                        "request_id": rid}
                r, attempts = _retry(c, "/decide", body, stop)
                assert r.status_code == 200, r.text
                event_id = r.json()["event_id"]
                with lock:
                    acked[rid] = event_id
                    retries["decide"] += attempts - 1
                if i % 2 == 0:
                    r, attempts = _retry(c, "/reward", {"event_id": event_id, "reward": 1.0}, stop)
                    assert r.status_code == 200, r.text
                    with lock:
                        rewarded.add(event_id)
                        retries["reward"] += attempts - 1

    workers = 4
    threads = [threading.Thread(target=client_loop, args=(w, n // workers)) for w in range(workers)]
    for t in threads:
        t.start()
    restarts = []
    try:
        for _ in range(kills):
            time.sleep(rng.uniform(0.5, 2.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            t0 = time.monotonic()
            proc = _start(home, port, tracking_uri)
            wait_http(f"{base}/healthz", timeout=180)
            restarts.append(round(time.monotonic() - t0, 1))
        stop.set()
        for t in threads:
            t.join(timeout=600)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    out = _verify(home / "logs", acked, rewarded)
    return {
        "decisions_acked": len(acked),
        "rewards_acked": len(rewarded),
        "kills": kills,
        "restart_seconds": restarts,
        "client_retries": dict(retries),
        **out,
    }


def _verify(logs: Path, acked: dict[str, str], rewarded: set[str]) -> dict[str, Any]:
    """Every acknowledged decision and reward on disk, counted once, files readable."""
    # a fresh process recovers whatever the last one left (it flushed on SIGTERM anyway)
    parts = sorted(logs.rglob("*.parquet"))
    unreadable = 0
    for part in parts:
        try:
            pq.read_table(part)
        except Exception:
            unreadable += 1
    conn = sqlite3.connect(logs / "index.db")
    integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    conn.close()
    decisions = pd.read_parquet(logs / "decisions")
    rewards = pd.read_parquet(logs / "rewards")
    from policies.catalog import load_catalog
    from training.data import load_training_set

    ts = load_training_set(logs, load_catalog(None), time.time() + 1e7)
    learned = ts.frame.set_index("event_id")["reward"]
    return {
        "acked_decisions_lost": len(set(acked.values()) - set(decisions["event_id"])),
        "acked_rewards_lost": len(rewarded - set(rewards.loc[rewards["counted"], "event_id"])),
        "rewards_counted_twice": int((rewards.loc[rewards["counted"]]
                                      .groupby("event_id").size() > 1).sum()),
        "training_reward_sum_vs_rewarded": (float(learned[learned.index.isin(rewarded)].sum()),
                                            len(rewarded)),
        "decision_rows": len(decisions),
        "parquet_files": len(parts),
        "parquet_unreadable": unreadable,
        "sqlite_integrity": integrity,
        "spools_left": sum(1 for _ in (logs / "spool").glob("*/seg-*")),
    }


def _check(tmp_path: Path, rel_server: Any, figure: Any, n: int, kills: int, tag: str) -> None:
    out = _crash_run(tmp_path, rel_server.settings.tracking_uri, n, kills, seed=n)
    figure(f"crash.{tag}", out)
    assert out["decisions_acked"] == n
    assert out["acked_decisions_lost"] == 0
    assert out["acked_rewards_lost"] == 0
    assert out["rewards_counted_twice"] == 0
    total, count = out["training_reward_sum_vs_rewarded"]
    assert total == count  # each acknowledged reward learned exactly once
    assert out["parquet_unreadable"] == 0 and out["sqlite_integrity"] == "ok"
    assert out["spools_left"] == 0


def test_kill_9_during_2000_decisions(tmp_path: Path, rel_server: Any, figure: Any) -> None:
    _check(tmp_path, rel_server, figure, 2_000, 3, "2k")


@pytest.mark.slow
def test_kill_9_during_10000_decisions(tmp_path: Path, rel_server: Any, figure: Any) -> None:
    _check(tmp_path, rel_server, figure, 10_000, 8, "10k")
