"""``maestro serve --engine uvicorn`` as a real process: kill -9 loses nothing it answered,
SIGTERM flushes the log to Parquet."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _start(home: Path, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "MAESTRO_HOME": str(home),
        "MAESTRO_FEATURE_SOURCE": "memory",
        "MAESTRO_ROLL_SECONDS": "3600",  # nothing reaches Parquet before the kill
        "MAESTRO_API_KEY": "proc-key",
    }
    env.pop("MAESTRO_KILL_SWITCH", None)
    env.pop("MLFLOW_TRACKING_URI", None)  # the default: sqlite:///$MAESTRO_HOME/mlflow.db
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--engine", "uvicorn", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_kill_9_then_restart_loses_nothing_and_sigterm_flushes(
    tmp_path: Path, helpers: object
) -> None:
    free_port, wait_http = helpers.free_port, helpers.wait_http  # type: ignore[attr-defined]
    from policies.registry import make_policy
    from training.tracking import register_policy

    home = tmp_path / "home"
    home.mkdir()
    # a champion in the workspace's own registry, which the server finds by default
    _, version = register_policy(
        make_policy("uniform").save(),
        "churn_risk",
        f"sqlite:///{home / 'mlflow.db'}",
        kind="uniform",
        champion=True,
    )
    headers = {"Authorization": "Bearer proc-key"}
    port = free_port()
    proc = _start(home, port)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=120)
        answered = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10) as c:
            for i in range(40):
                r = c.post(
                    "/decide", json={"customer_id": f"c-{i:06d}", "decision_point": "churn_risk"}
                )
                assert r.status_code == 200, r.text
                assert (r.json()["policy"], r.json()["policy_version"]) == ("uniform", version)
                answered.append(r.json()["event_id"])
            rewarded = answered[0]
            assert c.post("/reward", json={"event_id": rewarded, "reward": 1.0}).status_code == 200
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -9
        decisions = home / "logs" / "decisions"
        assert not list(decisions.glob("*.parquet"))  # still only in the killed spool
    finally:
        if proc.poll() is None:
            proc.kill()

    port2 = free_port()
    proc2 = _start(home, port2)
    try:
        wait_http(f"http://127.0.0.1:{port2}/healthz", timeout=120)
        frame = pd.read_parquet(home / "logs" / "decisions")  # recovered at start
        assert set(answered) <= set(frame["event_id"])
        assert (frame["decision_point"] == "churn_risk").sum() == 40
        rewards = pd.read_parquet(home / "logs" / "rewards")
        assert rewards["event_id"].tolist() == [rewarded]
        with httpx.Client(base_url=f"http://127.0.0.1:{port2}", headers=headers, timeout=10) as c:
            # the restarted server still knows the ids it did not issue itself
            dup = c.post("/reward", json={"event_id": rewarded, "reward": 1.0})
            assert dup.status_code == 200 and dup.json()["duplicate"] is True
            later = c.post("/decide", json={"customer_id": "c-000001"}).json()["event_id"]
        proc2.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully (lifespan: the log is rolled), then re-raises SIGTERM
        assert proc2.wait(timeout=60) in (0, -signal.SIGTERM)
        frame = pd.read_parquet(home / "logs" / "decisions")
        assert later in set(frame["event_id"])
        assert not any((home / "logs" / "spool").iterdir())
    finally:
        if proc2.poll() is None:
            proc2.kill()
        time.sleep(0)
