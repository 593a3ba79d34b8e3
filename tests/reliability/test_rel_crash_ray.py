"""Item 1 on Ray Serve: ``maestro serve --engine ray --replicas 2`` keeps serving while
one replica process at a time is killed with SIGKILL (Serve starts a replacement, which
rolls the dead replica's spool). Clients send decisions (each with a ``request_id``) and
a reward for every other one, retrying each until answered (HAProxy answers a request
the dead replica held with an error; a retry lands on the other replica). Then, after a
clean shutdown and the spool recovery the next start runs: 0 acknowledged decisions
lost, 0 acknowledged rewards lost, 0 rewards counted twice in training, every SQLite and
Parquet file readable. Slow: one Ray cluster.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.ray, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
KEY = "crash-key"

_spec = importlib.util.spec_from_file_location(
    "rel_crash", Path(__file__).with_name("test_rel_crash.py")
)
assert _spec is not None and _spec.loader is not None
_crash = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_crash)


def _replicas(session: int) -> list[psutil.Process]:
    """The live Serve replica processes of our cluster (same session as ``maestro serve``)."""
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        with contextlib.suppress(psutil.Error, OSError):
            if os.getsid(p.pid) == session and "ServeReplica" in " ".join(p.info["cmdline"] or ()):
                found.append(p)
    return found


def _run(tmp_path: Path, tracking_uri: str, n: int, kills: int, seed: int) -> dict[str, Any]:
    from live_servers import free_port  # type: ignore[import-not-found]

    home = tmp_path / "home"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    ray_dir = tempfile.mkdtemp(prefix="mc-")
    env = {
        **os.environ,
        "MAESTRO_HOME": str(home),
        "MAESTRO_FEATURE_SOURCE": "memory",
        "MAESTRO_ROLL_SECONDS": "1",
        "MAESTRO_API_KEY": KEY,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MAESTRO_RAY_TEMP_DIR": ray_dir,
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    env.pop("MAESTRO_KILL_SWITCH", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli.main",
            "serve",
            "--engine",
            "ray",
            "--replicas",
            "2",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    acked: dict[str, str] = {}
    rewarded: set[str] = set()
    stop = threading.Event()
    rng = random.Random(seed)
    retries = {"decide": 0, "reward": 0}
    lock = threading.Lock()
    killed: list[int] = []
    replaced_s: list[float] = []

    def client_loop(worker: int, count: int) -> None:
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=10
        ) as c:
            for i in range(count):
                rid = f"w{worker}-{i}"
                body = {
                    "customer_id": f"c-{i % 200:06d}",
                    "decision_point": "cart_abandoned",
                    "request_id": rid,
                }
                r, attempts = _crash._retry(c, "/decide", body, stop)
                assert r.status_code == 200, r.text
                event_id = r.json()["event_id"]
                with lock:
                    acked[rid] = event_id
                    retries["decide"] += attempts - 1
                if i % 2 == 0:
                    r, attempts = _crash._retry(
                        c, "/reward", {"event_id": event_id, "reward": 1.0}, stop
                    )
                    assert r.status_code == 200, r.text
                    with lock:
                        rewarded.add(event_id)
                        retries["reward"] += attempts - 1

    try:
        deadline = time.monotonic() + 300
        while len(_replicas(proc.pid)) < 2 or not _healthy(base):
            assert proc.poll() is None, "ray serve exited"
            assert time.monotonic() < deadline, "cluster did not start"
            time.sleep(0.5)
        workers = 4
        threads = [
            threading.Thread(target=client_loop, args=(w, n // workers)) for w in range(workers)
        ]
        for t in threads:
            t.start()
        for _ in range(kills):
            time.sleep(rng.uniform(1.0, 3.0))
            victim = rng.choice(_replicas(proc.pid))
            victim.send_signal(signal.SIGKILL)
            killed.append(victim.pid)
            t0 = time.monotonic()
            # wait for Serve to replace it (two live replicas again)
            while len([p for p in _replicas(proc.pid) if p.pid != victim.pid]) < 2:
                assert time.monotonic() - t0 < 180, "replica not replaced"
                time.sleep(0.2)
            replaced_s.append(round(time.monotonic() - t0, 1))
        stop.set()
        for t in threads:
            t.join(timeout=900)
    finally:
        stop.set()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(ray_dir, ignore_errors=True)
    # a replica that died without closing its log (kill -9, or one still starting when
    # the cluster shut down) leaves a spool that the next process to start rolls; do
    # what that start does, then check
    from serving.eventlog.log import EventLog

    logs = home / "logs"
    segments = list((logs / "spool").glob("*/seg-*"))
    left = {
        "spool_segments_after_shutdown": len(segments),
        "spool_records_after_shutdown": sum(len(seg.read_bytes().splitlines()) for seg in segments),
        "records_recovered_by_next_start": EventLog(logs).recover(),
    }
    out = _crash._verify(logs, acked, rewarded)
    return {
        **left,
        "decisions_acked": len(acked),
        "rewards_acked": len(rewarded),
        "replica_kills": len(killed),
        "replica_replaced_seconds": replaced_s,
        "client_retries": dict(retries),
        **out,
    }


def _healthy(base: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    return False


def test_kill_9_one_ray_replica_during_decisions(
    tmp_path: Path, rel_server: Any, figure: Any
) -> None:
    out = _run(tmp_path, rel_server.settings.tracking_uri, 2_000, 3, seed=11)
    figure("crash.ray_replica", out)
    assert out["decisions_acked"] == 2_000
    assert out["replica_kills"] == 3
    assert out["acked_decisions_lost"] == 0
    assert out["acked_rewards_lost"] == 0
    assert out["rewards_counted_twice"] == 0
    total, count = out["training_reward_sum_vs_rewarded"]
    assert total == count  # each acknowledged reward learned exactly once
    assert out["parquet_unreadable"] == 0 and out["sqlite_integrity"] == "ok"
    assert out["spools_left"] == 0
