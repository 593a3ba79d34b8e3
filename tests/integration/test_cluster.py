"""Maestro deployed into an existing two-node Ray cluster (``maestro serve --engine ray
--address``), with every shared state networked: features in the session's redis-server
(Feast's Redis online store), the reward and request-id index, tombstones and assignments
in the session's PostgreSQL (``MAESTRO_STATE_URL``). One replica per node, asserted from
Ray's actor table; requests go through the head's proxy, and which replica answered is
read back from the logs (each record names its replica, whose pid the actor table
places on a node)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from live_servers import free_port, wait_http

pytestmark = [pytest.mark.ray, pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]
REPLICA_CLASS = "ServeReplica:maestro:Maestro"


def _maestro(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=timeout,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def deployed(ray_two_nodes, cluster_redis, postgres, tmp_path_factory):
    """The app deployed into the cluster: (base URL, workspace, node of each replica pid)."""
    home = tmp_path_factory.mktemp("cluster-home")
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MAESTRO_HOME": str(home),
        "MAESTRO_ONLINE_STORE": cluster_redis.url,
        "MAESTRO_STATE_URL": postgres.database(),
        "MAESTRO_RAY_PROXY_LOCATION": "HeadOnly",  # one machine: one proxy on the port
        "MAESTRO_RAY_MAX_REPLICAS_PER_NODE": "1",
        "MAESTRO_ROLL_SECONDS": "3",  # the killed node leaves decisions unrolled
    }
    env.pop("RAY_ADDRESS", None)
    _maestro(env, "init", "--customers", "200")
    out = _maestro(env, "serve", "--engine", "ray", "--address", ray_two_nodes.address,
                   "--replicas", "2", "--port", str(port))
    assert "deployed to the Ray cluster" in out and "2 node(s)" in out
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/readyz", timeout=180)
    replicas = ray_two_nodes.actors(REPLICA_CLASS)
    yield base, home, {a["Pid"]: a["Address"]["NodeID"] for a in replicas}
    import ray
    from ray import serve

    ray.init(address=ray_two_nodes.address, log_to_driver=False)
    try:
        serve.shutdown()
    finally:
        ray.shutdown()


def _nodes_of(frame: pd.DataFrame, nodes_by_pid: dict[int, str]) -> pd.Series:
    """The node of each record's replica (``host-pid-rand``)."""
    return frame["replica"].map(lambda name: nodes_by_pid.get(int(name.split("-")[-2])))


def _rolled(
    home: Path, kind: str, event_ids: set[str], rows: int = 0, timeout: float = 30
) -> pd.DataFrame:
    """The ``kind`` log rows of ``event_ids`` once each has one rolled to Parquet (and
    ``rows`` rows are there in all)."""
    deadline = time.monotonic() + timeout
    while True:
        frame = pd.read_parquet(home / "logs" / kind) if (home / "logs" / kind).exists() else None
        if frame is not None and "event_id" in frame:  # an empty directory has no columns
            frame = frame[frame["event_id"].isin(event_ids)]
            if set(frame["event_id"]) >= event_ids and len(frame) >= rows:
                return frame
        assert time.monotonic() < deadline, f"{kind} of {len(event_ids)} events not rolled"
        time.sleep(0.5)


def test_one_replica_on_each_node(deployed, ray_two_nodes) -> None:
    _, _, nodes_by_pid = deployed
    assert sorted(nodes_by_pid.values()) == sorted(ray_two_nodes.node_ids)


def test_a_consent_revoked_through_one_replica_holds_on_the_other(deployed) -> None:
    base, home, nodes_by_pid = deployed
    customer = "c-000007"
    with httpx.Client(base_url=base, timeout=30) as client:
        revoked = client.post("/events", json={
            "customer_id": customer, "type": "consent_changed",
            "properties": {"channel": "email", "granted": False},
        })
        assert revoked.status_code == 202, revoked.text
        answers = [
            client.post("/decide", json={"customer_id": customer}).json() for _ in range(16)
        ]
    assert all(a["channel"] != "email" for a in answers)
    assert all(
        any(x["reason"] == "no_consent:email" for x in a["excluded"]) for a in answers
    )
    decisions = _rolled(home, "decisions", {a["event_id"] for a in answers})
    assert set(_nodes_of(decisions, nodes_by_pid)) == set(nodes_by_pid.values())


def test_a_reward_for_the_other_nodes_decision_counts_once(deployed) -> None:
    base, home, nodes_by_pid = deployed
    with httpx.Client(base_url=base, timeout=30) as client:
        # an odd count: a proxy taking turns between the two replicas then sends each
        # reward to the node that did not decide it (an even count lines them up)
        ids = [
            client.post("/decide", json={"customer_id": f"c-{i:06d}"}).json()["event_id"]
            for i in range(21)
        ]
        first = [client.post("/reward", json={"event_id": e, "reward": 1.0}).json() for e in ids]
        again = [client.post("/reward", json={"event_id": e, "reward": 1.0}).json() for e in ids]
    assert all(r["accepted"] and not r["duplicate"] for r in first)
    assert all(r["duplicate"] for r in again)  # received, not counted
    decisions = _rolled(home, "decisions", set(ids)).set_index("event_id")
    rewards = _rolled(home, "rewards", set(ids), rows=42)
    assert len(rewards) == 42 and int(rewards["duplicate"].sum()) == 21
    counted = rewards[rewards["counted"]]
    assert counted["event_id"].value_counts().max() == 1 and len(counted) == 21
    decided_on = _nodes_of(decisions.reset_index(), nodes_by_pid).set_axis(decisions.index)
    rewarded_on = _nodes_of(counted, nodes_by_pid).to_numpy()
    across = (decided_on.loc[counted["event_id"]].to_numpy() != rewarded_on).sum()
    assert across > 0  # some rewards reached the node that did not make the decision


def test_an_erasure_through_one_replica_reaches_both_nodes_logs(deployed) -> None:
    base, home, nodes_by_pid = deployed
    erased, marker = "c-000011", "c-000012"
    with httpx.Client(base_url=base, timeout=30) as client:
        for _ in range(12):  # on both replicas, some still in their spools
            assert client.post("/decide", json={"customer_id": erased}).status_code == 200
        gone = client.delete(f"/customers/{erased}")
        assert gone.status_code == 200, gone.text
        after = [
            client.post("/decide", json={"customer_id": marker}).json()["event_id"]
            for _ in range(12)
        ]
    rolled = _rolled(home, "decisions", set(after))  # both replicas rolled since the erasure
    assert set(_nodes_of(rolled, nodes_by_pid)) == set(nodes_by_pid.values())
    decisions = pd.read_parquet(home / "logs" / "decisions")
    assert int((decisions["customer_id"] == erased).sum()) == 0


def _decide_until_answered(client: httpx.Client, i: int) -> tuple[str, float]:
    """A retrying client: the same request id until a ``200``; its event id and how long
    it waited (a request id makes a retry answer the first answer, not a second decision)."""
    body = {"customer_id": f"c-{i % 200:06d}", "request_id": f"kill-{i}"}
    start = time.monotonic()
    while time.monotonic() - start < 60:
        try:
            answer = client.post("/decide", json=body)
            if answer.status_code == 200:
                return answer.json()["event_id"], time.monotonic() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"decision {i} not answered in 60 s")


def _spooled_decisions(home: Path, pid: int) -> set[str]:
    """Event ids of the decisions in the unrolled spool of the replica with ``pid``."""
    import json

    events = set()
    for segment in (home / "logs" / "spool").glob(f"*-{pid}-*/seg-*.jsonl"):
        for line in segment.read_text().splitlines():
            record = json.loads(line)
            if record.get("_t") == "d":
                events.add(record["event_id"])
    return events


def test_kill_9_of_the_worker_node_loses_and_doubles_no_decision(deployed, ray_two_nodes) -> None:
    base, home, nodes_by_pid = deployed
    (worker_pid,) = [p for p, n in nodes_by_pid.items() if n == ray_two_nodes.node_ids[1]]
    with httpx.Client(base_url=base, timeout=5) as client:
        acked = [_decide_until_answered(client, i)[0] for i in range(20)]
        ray_two_nodes.kill_worker()  # its replica dies with it, spool unrolled
        stranded = _spooled_decisions(home, worker_pid)
        during = [_decide_until_answered(client, i) for i in range(20, 60)]
        ray_two_nodes.add_worker()  # the machine comes back; Serve places a replica there
    acked += [event for event, _ in during]
    assert max(waited for _, waited in during) < 30  # the head kept answering
    deadline = time.monotonic() + 120
    while len(ray_two_nodes.actors(REPLICA_CLASS)) < 2:  # the new replica recovers the spool
        assert time.monotonic() < deadline, "no replica on the restarted node"
        time.sleep(1)
    assert stranded and stranded <= set(acked)  # acknowledged, only on the dead node's disk
    decisions = _rolled(home, "decisions", set(acked), timeout=60)  # the stranded included
    assert decisions["event_id"].value_counts().max() == 1  # none counted twice
