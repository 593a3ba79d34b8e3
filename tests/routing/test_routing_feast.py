"""Agents from Feast: ``maestro init`` materialises a seeded agent roster into a
real Feast repo (SQLite under tmp_path); a real uvicorn server routes ``agent_routing``
requests without ``actions`` among those agents, under the same rules as caller-sent
ones; load pushed through Feast reaches routing within the roster's staleness bound."""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

pytestmark = pytest.mark.integration
AGENTS, SEED, CUSTOMERS = 12, 5, 60
CASES = [
    {"required_skill": "technical", "required_level": 2, "language": "es"},
    {"required_skill": "billing", "required_level": 1, "language": "en"},
    {"required_skill": "sales", "required_level": 1, "language": "fr"},
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not come up")


@pytest.fixture(scope="module")
def feast_routing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import uvicorn

    from features.workspace import init_feature_workspace
    from serving.engines.runner import uvicorn_config
    from serving.factory import build_app
    from serving.settings import Settings

    home = tmp_path_factory.mktemp("routing-feast")
    first = init_feature_workspace(home, customers=CUSTOMERS, seed=SEED, agents=AGENTS)
    again = init_feature_workspace(home, customers=CUSTOMERS, seed=SEED, agents=AGENTS)
    settings = Settings(
        home=home,
        mlflow_tracking_uri=f"sqlite:///{home / 'mlflow.db'}",
        roll_seconds=0.5,
        cold_start_kind="uniform",
        # this suite checks routing, not latency: a loaded CI machine must not turn an
        # answer into the time-budget fallback or an admission refusal
        time_budget_ms=2000.0,
        admission_queue_ms=10_000.0,
    )
    app = build_app(settings)
    port = _free_port()
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    _wait_http(f"{base}/healthz")
    with httpx.Client(base_url=base, timeout=10) as client:
        yield {
            "client": client,
            "home": home,
            "service": app.state.service,
            "inits": (first, again),
        }
    server.should_exit = True
    thread.join(timeout=30)


def _roster(home: Path) -> dict[str, dict[str, Any]]:
    """Every agent as Feast's own SDK reads it from the online store."""
    from feast import FeatureStore

    from features.agent_roster import agents_parquet
    from features.schema import AGENT_FEATURES

    ids = pd.read_parquet(agents_parquet(home / "feature_repo"))["agent_id"].tolist()
    store = FeatureStore(repo_path=str(home / "feature_repo"))
    got = store.get_online_features(
        features=[f"agent:{f}" for f in AGENT_FEATURES], entity_rows=[{"agent_id": a} for a in ids]
    ).to_dict()
    return {a: {f: got[f][i] for f in AGENT_FEATURES} for i, a in enumerate(got["agent_id"])}


def _why(agent: dict[str, Any], case: dict[str, Any], vip: bool) -> str | None:
    """The contract's reason an agent is excluded for ``case`` (None: qualified)."""
    skills = set(agent["skills"].split(","))
    if case["required_skill"] not in skills or agent["level"] < case["required_level"]:
        return "skill"
    if case["language"] not in agent["languages"].split(","):
        return "language"
    if not agent["available"] or agent["load"] >= agent["capacity"]:
        return "capacity"
    if vip and "retention" not in skills:
        return "retention_only"
    return None


def _decide(client: httpx.Client, customer: str, case: dict, **extra: Any) -> dict[str, Any]:
    r = client.post(
        "/decide",
        json={"customer_id": customer, "decision_point": "agent_routing", "context": case, **extra},
    )
    assert r.status_code == 200, r.text
    return r.json()


def _customer(home: Path, cid: str) -> dict[str, Any]:
    from features.feast.source import FeastFeatureSource

    return dict(FeastFeatureSource(home / "feature_repo", timeout=2.0).get(cid).values)


def _next_second() -> None:
    """Feast keeps an agent row's time to the second, and cases routed in that second are
    counted on top of it (the safe side): a load reported *after* them starts a second later."""
    time.sleep(1.01 - time.time() % 1)


def _vip(values: dict[str, Any]) -> bool:
    return values["tier"] == "vip" or values["churn_risk"] >= 0.7



def _copy_repo(source: Path, target: Path) -> None:
    """A copy of the module's Feast repo. Other tests' live roster readers keep its SQLite
    files open, and a checkpoint may remove a ``-wal`` file between copytree's listing and
    its copy: copy again then (the files are whole again once the checkpoint is done)."""
    for attempt in range(5):
        try:
            shutil.copytree(source, target)
            return
        except shutil.Error:
            shutil.rmtree(target, ignore_errors=True)
            if attempt == 4:
                raise
            time.sleep(0.05)

def test_init_materialises_a_seeded_roster_once(feast_routing) -> None:
    from feast import FeatureStore

    from features.agent_roster import generate_agents

    home = feast_routing["home"]
    first, again = feast_routing["inits"]
    assert first.generated and first.materialized
    assert not again.generated and not again.materialized  # idempotent
    store = FeatureStore(repo_path=str(home / "feature_repo"))
    assert store.get_entity("agent").join_key == "agent_id"
    assert {f.name for f in store.get_feature_view("agent").features} == {
        "skills",
        "level",
        "languages",
        "load",
        "capacity",
        "available",
    }
    expected = generate_agents(AGENTS, SEED).set_index("agent_id")
    roster = _roster(home)
    assert len(roster) == AGENTS
    for aid, values in roster.items():
        for name, value in values.items():
            assert value == expected.loc[aid, name], (aid, name)
    assert sum(not v["available"] for v in roster.values()) < AGENTS  # some take cases
    # past interactions: the customer feature last_agent_id names roster agents
    last = {_customer(home, f"c-{i:06d}")["last_agent_id"] for i in range(CUSTOMERS)}
    assert "" in last and len(last - {""}) >= 3 and (last - {""}) <= set(roster)


def test_decide_without_actions_routes_among_feast_agents(feast_routing) -> None:
    client, home, agents = (feast_routing[k] for k in ("client", "home", "service"))
    agents = agents.agents
    roster = _roster(home)
    routed: dict[str, int] = {a: 0 for a in roster}  # cases this process routed since the read
    agents.refresh()  # the roster as the store has it; re-reads after this change nothing:
    for i in range(18):  # an agent's load is its row's plus the cases routed since
        cid, case = f"c-{i:06d}", CASES[i % len(CASES)]
        vip = _vip(_customer(home, cid))
        out = _decide(client, cid, case)
        now = {a: {**v, "load": v["load"] + routed[a]} for a, v in roster.items()}
        reasons = {e["action_id"]: e["reason"] for e in out["excluded"]}
        ranked = {x["action_id"] for x in out["ranking"]}
        assert ranked | set(reasons) == set(roster)  # every Feast agent, once
        for aid in reasons:
            assert _why(now[aid], case, vip) == reasons[aid], (aid, case)
        for aid in ranked:
            assert _why(now[aid], case, vip) is None, (aid, case)
        if out["action_id"] is not None:
            routed[out["action_id"]] += 1
            assert out["channel"] == "agent" and out["action_id"] in ranked
            assert out["degraded"] is False
    assert sum(routed.values()) >= 9


def test_caller_sent_agents_win(feast_routing) -> None:
    mine = {
        "id": "agent-caller",
        "channel": "agent",
        "features": {
            "skills": "technical,retention",
            "level": 2,
            "languages": "es",
            "load": 0,
            "capacity": 2,
        },
    }
    out = _decide(feast_routing["client"], "c-000001", CASES[0], actions=[mine])
    assert out["action_id"] == "agent-caller" and out["excluded"] == []
    assert [x["action_id"] for x in out["ranking"]] == ["agent-caller"]


def _assert_logged_continuity(service: Any, home: Path, event_id: str, agent: str) -> None:
    """The decision's log row: the customer's ``last_agent_id`` is ``agent``, and of the
    logged agents exactly that one carries ``continuity`` 1."""
    service.log.roll()
    frame = pd.read_parquet(home / "logs" / "decisions")
    row = frame[frame["event_id"] == event_id].iloc[0]
    assert json.loads(row["customer_features"])["last_agent_id"] == agent
    continuity = {a["id"]: a["features"]["continuity"] for a in json.loads(row["actions"])}
    assert continuity[agent] == 1 and sum(continuity.values()) == 1


def test_continuity_comes_from_the_feast_customer_feature(feast_routing) -> None:
    client, home, service = (feast_routing[k] for k in ("client", "home", "service"))
    roster = _roster(home)
    pick = None
    for i in range(CUSTOMERS):
        values = _customer(home, f"c-{i:06d}")
        last = values["last_agent_id"]
        if not last or _vip(values):
            continue
        agent = roster[last]
        case = {
            "required_skill": agent["skills"].split(",")[0],
            "required_level": 1,
            "language": "en",
        }
        if _why(agent, case, False) is None:
            pick = (f"c-{i:06d}", last, case)
            break
    assert pick is not None, "no customer whose last agent is free for a case"
    cid, last, case = pick
    out = _decide(client, cid, case)
    assert last in {x["action_id"] for x in out["ranking"]}
    _assert_logged_continuity(service, home, out["event_id"], last)


def test_agent_interaction_event_moves_continuity(feast_routing) -> None:
    """``POST /events`` ``agent_interaction`` sets the customer's
    ``last_agent_id``: the very next routing decision logs it and flags that agent's
    continuity."""
    client, home, service = (feast_routing[k] for k in ("client", "home", "service"))
    roster = _roster(home)
    case = {"required_skill": "billing", "required_level": 1, "language": "en"}
    for i in range(CUSTOMERS):
        cid = f"c-{i:06d}"
        values = _customer(home, cid)
        free = [a for a, feats in roster.items() if _why(feats, case, _vip(values)) is None]
        others = [a for a in free if a != values["last_agent_id"]]
        if others:
            break
    else:
        pytest.fail("no customer with a qualified agent other than their last one")
    # the most spare capacity: earlier tests' routed cases count as load in the service
    # until its roster is re-read (≤ 1 s), which can fill an agent with little room left
    target = max(others, key=lambda a: roster[a]["capacity"] - roster[a]["load"])
    r = client.post(
        "/events",
        json={"customer_id": cid, "type": "agent_interaction", "properties": {"agent_id": target}},
    )
    assert r.status_code == 202, r.text
    out = _decide(client, cid, case)
    assert target not in {x["action_id"] for x in out["excluded"]}, out["excluded"]
    _assert_logged_continuity(service, home, out["event_id"], target)


def test_load_pushed_to_feast_reaches_routing_within_the_bound(feast_routing) -> None:
    from feast import FeatureStore

    from features.agent_roster import push_agents

    client, home, service = (feast_routing[k] for k in ("client", "home", "service"))
    roster = _roster(home)
    case = CASES[1]  # billing, level 1, en
    qualified = [
        a
        for a, v in roster.items()
        if _why({**v, "available": True, "load": 0}, case, False) is None
    ]
    assert len(qualified) >= 3
    keep, rest = qualified[0], qualified[1:]
    rows = [{"agent_id": a, **roster[a], "load": roster[a]["capacity"]} for a in rest]
    rows.append({"agent_id": keep, **roster[keep], "available": True, "load": 0, "capacity": 2})
    _next_second()  # after the cases earlier tests routed
    push_agents(FeatureStore(repo_path=str(home / "feature_repo")), rows)
    agents = service.agents
    agents.refresh()
    cid = next(f"c-{i:06d}" for i in range(CUSTOMERS) if not _vip(_customer(home, f"c-{i:06d}")))
    out = _decide(client, cid, case)
    reasons = {e["action_id"]: e["reason"] for e in out["excluded"]}
    assert out["action_id"] == keep and all(reasons[a] == "capacity" for a in rest)
    # this process counts the case it routed at once: keep is at 1 of 2
    second = _decide(client, cid, case)
    assert second["action_id"] == keep
    third = _decide(client, cid, case)  # 2 of 2 routed here: at capacity, nobody else free
    assert third["action_id"] is None
    assert {e["action_id"]: e["reason"] for e in third["excluded"]}[keep] == "capacity"
    agents.refresh()  # the store's load (0, written before) + 2 routed after
    fourth = _decide(client, cid, case)
    assert fourth["action_id"] is None
    assert {e["action_id"]: e["reason"] for e in fourth["excluded"]}[keep] == "capacity"
    # the platform reports the new load (it counted both cases): the routed ones are dropped
    _next_second()
    push_agents(
        FeatureStore(repo_path=str(home / "feature_repo")),
        [{"agent_id": keep, **roster[keep], "available": True, "load": 0, "capacity": 2}],
    )
    agents.refresh()
    assert _decide(client, cid, case)["action_id"] == keep


def test_cases_routed_by_another_process_count_towards_load(feast_routing, tmp_path: Path) -> None:
    """Two roster sources on one workspace (two replicas): cases one routes fill the
    agent in the other's view on its next read; a newer load from the platform resets."""
    from feast import FeatureStore

    from features.agent_roster import push_agents
    from features.agents import AgentSource
    from features.routed_cases import SqliteLedger

    repo = tmp_path / "feature_repo"
    _copy_repo(feast_routing["home"] / "feature_repo", repo)
    roster = _roster(feast_routing["home"])
    agent = next(iter(roster))
    store = FeatureStore(repo_path=str(repo))
    _next_second()
    push_agents(store, [{"agent_id": agent, **roster[agent], "available": True, "load": 1,
                         "capacity": 3}])
    one, two = AgentSource(repo, max_age=0.0), AgentSource(repo, max_age=0.0)
    assert isinstance(one.ledger, SqliteLedger) and one.ledger.path == two.ledger.path

    def load(source: AgentSource) -> int:
        return next(a for a in source.agents() if a.id == agent).features["load"]

    assert load(one) == load(two) == 1
    one.assigned(agent)
    one.assigned(agent)
    assert load(one) == 3  # its own cases count at once (and reach the ledger on this read)
    assert load(two) == 3  # the other process's cases, through the ledger
    two.assigned(agent)
    assert load(one) == 3  # two's case is not in the ledger until two's next read
    assert load(two) == 4 and load(one) == 4
    _next_second()
    push_agents(store, [{"agent_id": agent, **roster[agent], "available": True, "load": 2,
                         "capacity": 3}])
    assert load(one) == load(two) == 2  # the platform counted them: only its load is left
    local = AgentSource(repo, max_age=0.0, shared_counts=False)
    two.assigned(agent)
    assert local.ledger is None and load(local) == 2 and load(two) == 3


def test_roster_outage_serves_the_last_roster_then_503(feast_routing, tmp_path: Path) -> None:
    from features.agents import AgentSource
    from features.errors import FeatureStoreUnavailable

    repo = tmp_path / "feature_repo"
    _copy_repo(feast_routing["home"] / "feature_repo", repo)
    now = [0.0]
    source = AgentSource(repo, max_age=1.0, max_stale=10.0, clock=lambda: now[0])
    before = source.agents()
    assert len(before) == AGENTS and source.reads == 1
    with sqlite3.connect(repo / "data" / "online_store.db") as conn:  # the table is gone
        conn.execute('DROP TABLE "maestro_agent"')
    now[0] = 5.0
    assert source.agents() == before  # within max_stale: the last roster
    now[0] = 11.0
    with pytest.raises(FeatureStoreUnavailable):
        source.agents()


def test_an_agent_pushed_to_feast_joins_the_roster(feast_routing, tmp_path: Path) -> None:
    """A new agent pushed through ``agent_push`` (online and offline, as ``push_agents``
    does) is routed to on the next roster read; the offline Parquet keeps its history."""
    from feast import FeatureStore

    from features.agent_roster import agents_parquet, push_agents
    from features.agents import AgentSource

    repo = tmp_path / "feature_repo"
    _copy_repo(feast_routing["home"] / "feature_repo", repo)
    source = AgentSource(repo, max_age=0.0, shared_counts=False)
    assert "agent-new" not in {a.id for a in source.agents()}
    row = {"agent_id": "agent-new", "skills": "billing", "level": 1, "languages": "en",
           "load": 0, "capacity": 2, "available": True}
    push_agents(FeatureStore(repo_path=str(repo)), [row])
    new = {a.id: a for a in source.agents()}["agent-new"]
    assert new.channel == "agent"
    assert {k: new.features[k] for k in ("skills", "level", "load", "capacity")} == {
        "skills": "billing", "level": 1, "load": 0, "capacity": 2}
    history = pd.read_parquet(agents_parquet(repo))
    assert (history["agent_id"] == "agent-new").sum() == 1


def test_the_background_reader_keeps_the_roster_fresh(feast_routing, tmp_path: Path) -> None:
    """Started, a source re-reads the roster itself every ``max_age``: a pushed load shows
    in ``agents()`` without any request reading the store; ``close`` stops the thread."""
    from feast import FeatureStore

    from features.agent_roster import push_agents
    from features.agents import AgentSource

    repo = tmp_path / "feature_repo"
    _copy_repo(feast_routing["home"] / "feature_repo", repo)
    roster = _roster(feast_routing["home"])
    agent = next(iter(roster))
    source = AgentSource(repo, max_age=0.1, shared_counts=False).start()
    try:
        first = source.reads
        push_agents(FeatureStore(repo_path=str(repo)),
                    [{"agent_id": agent, **roster[agent], "available": True, "load": 1,
                      "capacity": 7}])
        deadline = time.monotonic() + 10
        while {a.id: a for a in source.agents()}[agent].features["capacity"] != 7:
            assert time.monotonic() < deadline, "the pushed capacity never showed"
            time.sleep(0.05)
        assert source.reads > first
    finally:
        source.close()
    reads = source.reads
    time.sleep(0.3)
    assert source.reads == reads  # stopped


def test_a_push_of_agents_keeps_the_customer_cache(feast_routing, tmp_path: Path) -> None:
    """``push_agents`` names its commit in the change journal, so readers keep their cached
    customer rows (a commit without an entry would empty every process's cache)."""
    from feast import FeatureStore

    from features.agent_roster import push_agents
    from features.feast.source import FeastFeatureSource

    repo = tmp_path / "feature_repo"
    _copy_repo(feast_routing["home"] / "feature_repo", repo)
    roster = _roster(feast_routing["home"])
    agent = next(iter(roster))
    source = FeastFeatureSource(repo, timeout=2.0)
    cache = source.backend.cache
    assert cache is not None
    source.get("c-000001")
    source.get("c-000001")
    hits, clears = cache.hits, cache.clears
    store = FeatureStore(repo_path=str(repo))
    push_agents(store, [{"agent_id": agent, **roster[agent]}])
    assert source.get("c-000001").values == _customer(feast_routing["home"], "c-000001")
    assert cache.clears == clears and cache.hits == hits + 1
    with sqlite3.connect(repo / "data" / "online_store.db") as conn:  # a direct write
        conn.execute('DELETE FROM "maestro_agent" WHERE 0')
        conn.execute('CREATE TABLE IF NOT EXISTS scratch (x)')
    source.get("c-000001")
    assert cache.clears == clears + 1  # an unnamed commit still empties it
    clears = cache.clears
    # the journal entry commits with the rows: a reader reading all along never sees a
    # commit without one (journalled after Feast's commit, this loop emptied the cache)
    done = threading.Event()

    def read_all_along() -> None:
        while not done.is_set():
            source.get("c-000001")

    reader = threading.Thread(target=read_all_along)
    reader.start()
    try:
        for load in range(5):
            push_agents(store, [{"agent_id": agent, **roster[agent], "load": load}])
    finally:
        done.set()
        reader.join()
    assert cache.clears == clears
