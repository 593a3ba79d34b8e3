"""``maestro serve --engine ray``: the same app on Ray Serve (one local cluster start).

Two replicas behind Ray Serve's HAProxy ingress: the contract's shapes, a reward posted
to whichever replica (ids are signed with the workspace secret; duplicates are caught
across replicas), the contact caps held across replicas, overload answered ``503`` with
``Retry-After`` and the JSON error (by HAProxy, :mod:`serving.engines.haproxy_shed`), and
SIGTERM rolling
every replica's log to Parquet (how requests spread over replicas is HAProxy's choice)."""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

pytestmark = [pytest.mark.ray, pytest.mark.integration]  # ~25 s, one cluster: in `make test`
ROOT = Path(__file__).resolve().parents[2]


async def _burst(base: str, headers: dict[str, str], n: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30, limits=limits) as c:
        body = {"customer_id": "c-000003", "decision_point": "default"}
        return await asyncio.gather(*(c.post("/decide", json=body) for _ in range(n)))


def _email_consented(n: int = 40) -> list[str]:
    """Customers of the memory feature source (``memory_layer_from_synthetic``: 1,000
    synthetic customers, seed 7) who consent to e-mail, past the ones the test decides for
    before."""
    from features.synthetic import generate_customers

    frame = generate_customers(1000, 7).features.iloc[100:]
    return list(frame.loc[frame["consent_email"].astype(bool), "customer_id"][:n])


def _contacts_across_replicas(c: httpx.Client) -> None:
    """The default catalog's e-mail cap (3 in 7d) holds across both replicas (one shared
    contact store): decisions and ``message_sent`` until the next answer excludes e-mail
    with ``cap:email:7d``; an outside ``message_sent`` counts; activation is idempotent."""
    looped, outside = _email_consented(2)
    emails = 0
    for _ in range(120):
        body = c.post("/decide", json={"customer_id": looped, "decision_point": "default"})
        assert body.status_code == 200, body.text
        body = body.json()
        reasons = {x["action_id"]: x["reason"] for x in body["excluded"]}
        if reasons.get("email_newsletter") == "cap:email:7d":
            break
        if body["action_id"] == "email_newsletter":
            emails += 1
            sent = {"customer_id": looped, "type": "message_sent",
                    "properties": {"event_id": body["event_id"]}}
            assert c.post("/events", json=sent).status_code == 202
            first = c.post(f"/decisions/{body['event_id']}/activate")
            assert first.status_code == 200 and first.json()["activated"] is True
            again = c.post(f"/decisions/{body['event_id']}/activate")
            assert again.status_code == 200 and again.json()["duplicate"] is True
    else:
        pytest.fail("the e-mail cap never excluded email_newsletter on the Ray engine")
    assert emails == 3
    assert "email_newsletter" not in {x["action_id"] for x in body["ranking"]}
    for _ in range(3):  # contacts made outside Maestro, through whichever replica
        sent = {"customer_id": outside, "type": "message_sent", "properties": {"channel": "email"}}
        assert c.post("/events", json=sent).status_code == 202
    body = c.post("/decide", json={"customer_id": outside, "decision_point": "default"}).json()
    assert {x["action_id"]: x["reason"] for x in body["excluded"]}.get(
        "email_newsletter"
    ) == "cap:email:7d"
    assert c.post("/decisions/nope/activate").status_code == 404


def test_ray_serve_engine(tmp_path: Path, mlflow_uri: str, helpers) -> None:
    home = tmp_path / "home"
    port = helpers.free_port()
    # Ray's socket paths must stay under 107 bytes: pytest's tmp_path is too deep, so the
    # cluster gets a short private directory, removed at the end
    ray_dir = tempfile.mkdtemp(prefix="mr-")
    env = {
        **os.environ,
        "MAESTRO_HOME": str(home),
        "MAESTRO_FEATURE_SOURCE": "memory",
        "MLFLOW_TRACKING_URI": mlflow_uri,
        "MAESTRO_API_KEY": "ray-key",
        "MAESTRO_RAY_MAX_ONGOING_REQUESTS": "1",
        "MAESTRO_RAY_MAX_QUEUED_REQUESTS": "1",
        "MAESTRO_RAY_TEMP_DIR": ray_dir,
        "RAY_USAGE_STATS_ENABLED": "0",
    }
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
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": "Bearer ray-key"}
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")[-3000:]
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "Ray Serve did not come up in 240 s"
            time.sleep(0.5)
        with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
            assert (
                c.post(
                    "/decide",
                    json={"customer_id": "c-000001"},
                    headers={"Authorization": "Bearer wrong"},
                ).status_code
                == 401
            )
            ids = []
            for i in range(30):
                r = c.post(
                    "/decide",
                    json={
                        "customer_id": f"c-{i:06d}",
                        "decision_point": "cart_abandoned",
                        "context": {"page": "checkout"},
                    },
                )
                assert r.status_code == 200, r.text
                body = r.json()
                assert (
                    math.isclose(sum(x["probability"] for x in body["ranking"]), 1.0)
                    or body["action_id"] is None
                )
                ids.append(body["event_id"])
            bad = c.post("/decide", json={"customer_id": "c-1", "context": {"x": [1]}})
            assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "context.x"
            # every id is accepted once, whichever replica answers the reward
            for eid in ids:
                assert (
                    c.post("/reward", json={"event_id": eid, "reward": 1.0}).json()["duplicate"]
                    is False
                )
            dups = [
                c.post("/reward", json={"event_id": eid, "reward": 1.0}).json()["duplicate"]
                for eid in ids
            ]
            assert all(dups)
            assert c.post("/reward", json={"event_id": "0" * 44, "reward": 1.0}).status_code == 404
            _contacts_across_replicas(c)
        # overload: far more concurrent requests than max_ongoing + max_queued
        responses = asyncio.run(_burst(base, headers, 120))
        codes = {r.status_code for r in responses}
        assert codes <= {200, 503}, codes
        rejected = [r for r in responses if r.status_code == 503]
        assert rejected, "no request was shed"
        assert all(r.headers.get("retry-after") == "1" for r in rejected)
        # HAProxy refuses before a replica (serving/engines/haproxy_shed.py; its maxconn is capped
        # at max_ongoing_requests = 1, so Ray's plain-text backpressure 503 never fires)
        assert all(b"OverloadedError" in r.content for r in rejected), {
            r.content[:120] for r in rejected
        }
        assert all(r.json()["detail"][0]["type"] == "OverloadedError" for r in rejected)
        assert any(r.status_code == 200 for r in responses)
    finally:
        proc.send_signal(signal.SIGTERM)
        stopping = time.monotonic()
        try:
            out = proc.communicate(timeout=120)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out = proc.communicate()[0].decode(errors="replace")
        stopped_in = time.monotonic() - stopping
        shutil.rmtree(ray_dir, ignore_errors=True)
    assert proc.returncode == 0, out[-3000:]
    # one clean line, without Ray's report of the controller killed in its own shutdown
    assert out.rstrip().splitlines()[-1] == "maestro: stopped", out[-3000:]
    assert "graceful_shutdown" not in out and "Traceback" not in out, out[-3000:]
    # inside a typical termination grace period (Kubernetes: 30 s), where Ray's default
    # 30 s drain of a direct-ingress replica took 34 s (serving.engines.ray_serve.ray_environment)
    assert stopped_in < 25, f"SIGTERM to exit took {stopped_in:.1f} s"
    frame = pd.read_parquet(home / "logs" / "decisions")
    assert set(ids) <= set(frame["event_id"])
    # every replica ran its lifespan shutdown: spools rolled to Parquet and removed
    assert not any((home / "logs" / "spool").iterdir())
    rewards = pd.read_parquet(home / "logs" / "rewards")
    assert int(rewards["counted"].sum()) == len(ids) and int(rewards["duplicate"].sum()) == len(ids)
