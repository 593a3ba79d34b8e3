"""Maestro deployed into an existing two-node Ray cluster (``maestro serve --engine ray
--address``), with every shared state networked: features in the session's redis-server
(Feast's Redis online store), the reward and request-id index, tombstones and assignments
in the session's PostgreSQL (``MAESTRO_STATE_URL``), models on the session's MLflow
tracking server (its backend store on that PostgreSQL), the rolled logs in one shared
dataset named by a ``file://`` URI outside the workspace (``MAESTRO_LOG_DATASET``; each
replica's spool stays under the workspace). One replica per node, asserted from
Ray's actor table; requests go through the head's proxy, and which replica answered is
read back from the logs (each record names its replica, whose pid the actor table
places on a node)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import httpx
import pandas as pd
import pytest
from live_servers import free_port, wait_http

pytestmark = [pytest.mark.ray, pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]
REPLICA_CLASS = "ServeReplica:maestro:Maestro"
POLL_SECONDS = 2.0


class Deployed(NamedTuple):
    """The app in the cluster: its base URL, workspace, the node of each replica pid, and
    the environment ``maestro`` commands against it run with."""

    base: str
    home: Path
    nodes_by_pid: dict[int, str]
    env: dict[str, str]
    dataset: Path  # the shared log dataset's directory (``file://`` in the settings)


def _maestro(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=timeout,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def deployed(ray_two_nodes, cluster_redis, postgres, mlflow_server, tmp_path_factory):
    """The app deployed into the cluster (:class:`Deployed`)."""
    home = tmp_path_factory.mktemp("cluster-home")
    dataset = tmp_path_factory.mktemp("cluster-shared") / "logs"  # a volume both nodes see
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
        "MLFLOW_TRACKING_URI": mlflow_server.url,
        "MAESTRO_POLL_SECONDS": str(POLL_SECONDS),
        "MAESTRO_COLD_START_KIND": "uniform",  # a champion a trained policy clearly beats
        "MAESTRO_LOG_DATASET": f"file://{dataset}",
    }
    env.pop("RAY_ADDRESS", None)
    _maestro(env, "init", "--customers", "200")
    out = _maestro(env, "serve", "--engine", "ray", "--address", ray_two_nodes.address,
                   "--replicas", "2", "--port", str(port))
    assert "deployed to the Ray cluster" in out and "2 node(s)" in out
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/readyz", timeout=180)
    replicas = ray_two_nodes.actors(REPLICA_CLASS)
    yield Deployed(
        base, home, {a["Pid"]: a["Address"]["NodeID"] for a in replicas}, env, dataset
    )
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
    dataset: Path, kind: str, event_ids: set[str], rows: int = 0, timeout: float = 30
) -> pd.DataFrame:
    """The ``kind`` log rows of ``event_ids`` once each has one rolled to the shared
    dataset (and ``rows`` rows are there in all)."""
    deadline = time.monotonic() + timeout
    while True:
        frame = pd.read_parquet(dataset / kind) if (dataset / kind).exists() else None
        if frame is not None and "event_id" in frame:  # an empty directory has no columns
            frame = frame[frame["event_id"].isin(event_ids)]
            if set(frame["event_id"]) >= event_ids and len(frame) >= rows:
                return frame
        assert time.monotonic() < deadline, f"{kind} of {len(event_ids)} events not rolled"
        time.sleep(0.5)


def test_one_replica_on_each_node(deployed, ray_two_nodes) -> None:
    nodes_by_pid = deployed.nodes_by_pid
    assert sorted(nodes_by_pid.values()) == sorted(ray_two_nodes.node_ids)


def test_a_consent_revoked_through_one_replica_holds_on_the_other(deployed) -> None:
    base, _, nodes_by_pid, _, dataset = deployed
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
    decisions = _rolled(dataset, "decisions", {a["event_id"] for a in answers})
    assert set(_nodes_of(decisions, nodes_by_pid)) == set(nodes_by_pid.values())


def test_a_reward_for_the_other_nodes_decision_counts_once(deployed) -> None:
    base, _, nodes_by_pid, _, dataset = deployed
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
    decisions = _rolled(dataset, "decisions", set(ids)).set_index("event_id")
    rewards = _rolled(dataset, "rewards", set(ids), rows=42)
    assert len(rewards) == 42 and int(rewards["duplicate"].sum()) == 21
    counted = rewards[rewards["counted"]]
    assert counted["event_id"].value_counts().max() == 1 and len(counted) == 21
    decided_on = _nodes_of(decisions.reset_index(), nodes_by_pid).set_axis(decisions.index)
    rewarded_on = _nodes_of(counted, nodes_by_pid).to_numpy()
    across = (decided_on.loc[counted["event_id"]].to_numpy() != rewarded_on).sum()
    assert across > 0  # some rewards reached the node that did not make the decision


def test_an_erasure_through_one_replica_reaches_both_nodes_logs(deployed) -> None:
    base, home, nodes_by_pid, _, dataset = deployed
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
    rolled = _rolled(dataset, "decisions", set(after))  # both replicas rolled since the erasure
    assert set(_nodes_of(rolled, nodes_by_pid)) == set(nodes_by_pid.values())
    decisions = pd.read_parquet(dataset / "decisions")
    assert int((decisions["customer_id"] == erased).sum()) == 0
    assert not list((home / "logs").rglob("*.parquet"))  # nothing rolled beside the spools


def test_maestro_train_on_the_shared_dataset_sees_both_nodes_decisions(deployed) -> None:
    from policies.catalog import load_catalog
    from training.data import load_training_set

    base, _, nodes_by_pid, env, dataset = deployed
    with httpx.Client(base_url=base, timeout=30) as client:
        ids = [
            client.post("/decide", json={
                "customer_id": f"c-{i:06d}", "decision_point": "cart_abandoned",
            }).json()["event_id"]
            for i in range(40, 61)
        ]
        for event in ids:  # rewarded: joined now, not pending until the window closes
            assert client.post("/reward", json={"event_id": event, "reward": 1.0}).is_success
    rolled = _rolled(dataset, "rewards", set(ids))
    decided = _rolled(dataset, "decisions", set(ids))
    assert set(_nodes_of(decided, nodes_by_pid)) == set(nodes_by_pid.values())
    assert set(_nodes_of(rolled, nodes_by_pid)) == set(nodes_by_pid.values())
    trained = _maestro(env, "train", "--policy", "vw-cb", "--decision-point", "cart_abandoned")
    n_train, n_holdout = map(int, re.search(r"(\d+) train / (\d+) held-out", trained).groups())
    # the same reader, by the same URI: the rows the command trained on include both nodes'
    joined = load_training_set(f"file://{dataset}", load_catalog(), time.time(),
                               "cart_abandoned")
    assert n_train + n_holdout == len(joined)
    assert set(ids) <= set(joined.frame["event_id"])


def _email_wins(_latent: dict[str, float], action) -> float:
    """A reward rule a trained policy learns at once: email earns, the rest rarely."""
    return 0.9 if action.channel == "email" else 0.05


def _answers_until_swapped(
    client: httpx.Client, version: str, deadline: float
) -> list[tuple[float, str, str]]:
    """``(time, event id, policy version)`` of decisions at ``cart_abandoned`` until 24 in
    a row answer ``version`` (a proxy taking turns reaches both replicas) or ``deadline``."""
    answers: list[tuple[float, str, str]] = []
    body = {"customer_id": "c-000021", "decision_point": "cart_abandoned"}
    while time.monotonic() < deadline:
        answer = client.post("/decide", json=body).json()
        answers.append((time.monotonic(), answer["event_id"], answer["policy_version"]))
        if len(answers) >= 24 and all(v == version for _, _, v in answers[-24:]):
            break
        time.sleep(0.05)
    return answers


def _champion(env: dict[str, str]) -> str | None:
    """The registry's champion version of ``cart_abandoned``, asked of the MLflow server."""
    from training.tracking import model_name

    answer = httpx.get(
        f"{env['MLFLOW_TRACKING_URI']}/api/2.0/mlflow/registered-models/alias",
        params={"name": model_name("cart_abandoned"), "alias": "champion"}, timeout=10,
    )
    return answer.json()["model_version"]["version"] if answer.is_success else None


def _promote_while_deciding(
    env: dict[str, str], client: httpx.Client
) -> tuple[str, float, list[tuple[float, str, str]]]:
    """``maestro train --promote`` in the background; from the moment the server's alias
    moves (the command finishes after that), decisions until both replicas swapped:
    (new version, when the alias moved, the answers)."""
    before = _champion(env)
    train = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "train", "--policy", "vw-cb", "--decision-point",
         "cart_abandoned", "--promote"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    while (version := _champion(env)) == before and train.poll() is None:
        time.sleep(0.1)
    moved_at = time.monotonic()
    answers = _answers_until_swapped(client, str(version), moved_at + POLL_SECONDS + 30)
    out, err = train.communicate(timeout=300)
    assert train.returncode == 0 and "promoted to champion" in out, out + err[-3000:]
    assert f"version {version} " in out and version != before, (before, version, out)
    return str(version), moved_at, answers


def test_train_promote_on_the_mlflow_server_reaches_both_replicas(deployed) -> None:
    from policies.catalog import load_catalog
    from policies.registry import make_policy
    from training.synthetic_logs import write_synthetic_logs

    base, _, nodes_by_pid, env, dataset = deployed
    # uniform-logged decisions in the shared dataset, rewards a policy can clearly learn
    write_synthetic_logs(dataset, load_catalog(), make_policy("uniform"), 4000,
                         seed=3, click=_email_wins)
    with httpx.Client(base_url=base, timeout=30) as client:
        version, moved_at, answers = _promote_while_deciding(env, client)
    rolled = _rolled(dataset, "decisions", {e for _, e, _ in answers}).set_index("event_id")
    node = _nodes_of(rolled.reset_index(), nodes_by_pid).set_axis(rolled.index)
    swapped: dict[str, float] = {}
    for at, event, served in answers:
        if served == version:
            swapped.setdefault(node[event], at - moved_at)
        else:  # no node goes back to the old champion once it served the new one
            assert node[event] not in swapped, (event, served)
    print(f"champion v{version}: served by each node this long after the alias moved (s): "
          f"{sorted(swapped.values())}")
    assert set(swapped) == set(nodes_by_pid.values())  # both replicas, no restart
    assert (rolled["policy_version"] == version).sum() >= 24
    # one poll, then the model's download from the server and its load (loaded machine)
    assert max(swapped.values()) < POLL_SECONDS + 15, swapped


def _until_answered(client: httpx.Client, path: str, body: dict) -> tuple[dict, float]:
    """A retrying client: the same body until a ``200``; the answer and how long it waited
    (a request id makes a retried decision answer the first answer, not a second one; a
    retried reward answers ``duplicate: true`` when the first attempt was counted)."""
    start = time.monotonic()
    while time.monotonic() - start < 60:
        try:
            answer = client.post(path, json=body)
            if answer.status_code == 200:
                return answer.json(), time.monotonic() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{path} {body} not answered in 60 s")


def _visit(base: str, i: int) -> tuple[str, bool, float, float]:
    """One customer visit: a decision, and for every other one its reward, each retried
    until answered; (event id, rewarded, longest wait, when it ended)."""
    with httpx.Client(base_url=base, timeout=5) as client:
        body = {"customer_id": f"c-{i % 200:06d}", "request_id": f"kill-{i}"}
        answer, waited = _until_answered(client, "/decide", body)
        if i % 2 == 0:
            reward = {"event_id": answer["event_id"], "reward": 1.0}
            waited = max(waited, _until_answered(client, "/reward", reward)[1])
    return answer["event_id"], i % 2 == 0, waited, time.monotonic()


def _spooled(home: Path, pid: int) -> tuple[Path, int, set[str], set[str]]:
    """The unrolled spool of the replica with ``pid``: its directory, how many records it
    holds, and the event ids of its decisions and of its rewards."""
    import json

    (spool,) = (home / "logs" / "spool").glob(f"*-{pid}-*/")
    kinds: dict[str, set[str]] = {"d": set(), "r": set()}
    records = 0
    for segment in spool.glob("seg-*.jsonl"):
        for line in segment.read_text().splitlines():
            record = json.loads(line)
            kinds[record["_t"]].add(record["event_id"])
            records += 1
    return spool, records, kinds["d"], kinds["r"]


def _gone(pid: int, timeout: float = 30) -> None:
    """Wait until process ``pid`` has exited (a killed node's replica)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"replica {pid} still alive {timeout} s after its node was killed")


def test_kill_9_of_the_worker_node_loses_and_doubles_nothing(deployed, ray_two_nodes) -> None:
    from concurrent.futures import ThreadPoolExecutor

    base, home, nodes_by_pid, env, dataset = deployed
    (worker_pid,) = [p for p, n in nodes_by_pid.items() if n == ray_two_nodes.node_ids[1]]
    with ThreadPoolExecutor(4) as clients:  # four clients, retrying
        visits = list(clients.map(lambda i: _visit(base, i), range(40)))
        ray_two_nodes.kill_worker()  # raylet, object store and replica: SIGKILL
        killed_at = time.monotonic()
        during = list(clients.map(lambda i: _visit(base, i), range(40, 120)))
    _gone(worker_pid)
    spool, records, stranded, stranded_rewards = _spooled(home, worker_pid)
    recovered = _maestro(env, "recover", str(spool))  # from "any machine" with the disk
    assert f"recovered {records} record(s)" in recovered, (records, recovered)
    ray_two_nodes.add_worker()  # the machine comes back; Serve places a replica there
    deadline = time.monotonic() + 120
    while len(ray_two_nodes.actors(REPLICA_CLASS)) < 2:
        assert time.monotonic() < deadline, "no replica on the restarted node"
        time.sleep(1)
    back_at = time.monotonic()
    visits += during
    longest = max(v[2] for v in during)
    first = min(v[3] for v in during) - killed_at
    print(f"worker node killed: {len(during)} visits answered by the head, longest client "
          f"wait {longest:.2f} s, first answer {first:.2f} s after the kill; replica back on "
          f"the restarted node {back_at - killed_at:.1f} s after the kill; recovered "
          f"{len(stranded)} decisions + {len(stranded_rewards)} rewards from its spool")
    assert longest < 30  # the head kept answering
    assert stranded and stranded <= {v[0] for v in visits}  # acknowledged, on the dead disk
    acked = {v[0] for v in visits}
    rewarded = {v[0] for v in visits if v[1]}
    decisions = _rolled(dataset, "decisions", acked, timeout=60)
    assert decisions["event_id"].value_counts().max() == 1  # no decision logged twice
    rewards = _rolled(dataset, "rewards", rewarded, timeout=60)
    counted = rewards[rewards["counted"]]["event_id"]
    assert set(counted) == rewarded and counted.value_counts().max() == 1  # 0 lost, 0 twice
