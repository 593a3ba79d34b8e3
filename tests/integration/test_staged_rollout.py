"""Staged rollout end to end on a live uvicorn server with a real MLflow SQLite registry:
``maestro promote --stage`` moves a version shadow → canary → champion (the shadow logged
beside the champion and evaluated live, the canary serving its share with honest
probabilities), then an injected bad champion is rolled back automatically by the mSPRT
guardrails within a stated number of decisions, with the evidence in MLflow."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_run import maestro, workspace_env
from live_servers import LiveServer, LiveServers, live_settings

DP = "default"
ACTIONS = ("good", "meh", "bad")
REWARD_P = {"good": 0.8, "meh": 0.4, "bad": 0.05}
#: the stated bound: a bad champion watched at a 50% baseline share is rolled back within
#: this many decisions (rewards posted as they come)
ROLLBACK_WITHIN = 600


def _catalog(home: Path) -> None:
    actions = [
        {"id": a, "channel": "email", "features": {"category": "marketing"}} for a in ACTIONS
    ]
    body = {"decision_points": {DP: {"actions": actions, "exploration_floor": 0.3}}}
    (home / "catalog.yaml").write_text(yaml.safe_dump(body), "utf-8")


def _register(uri: str, first: str, seed: int) -> str:
    from policies.registry import make_policy
    from training.tracking import register_policy

    order = [first, *[a for a in ACTIONS if a != first]]
    policy = make_policy("rules", priorities={DP: order}, exploration_floor=0.3, seed=seed)
    return register_policy(
        policy.save(), DP, uri, kind="rules", params=policy.params, run_name=f"rules-{first}"
    )[1]


def _stages(live: LiveServer) -> dict[str, Any]:
    return live.client.get("/stages").json()["decision_points"][DP]


def _wait(live: LiveServer, check: Any, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = _stages(live)
        if check(body):
            return body
        time.sleep(0.2)
    raise AssertionError(f"/stages never reached the expected state: {body}")


def _drive(live: LiveServer, n: int, start: int, rng: random.Random) -> list[dict[str, Any]]:
    """``n`` decisions for new customers, each rewarded at once (Bernoulli by action)."""
    answers = []
    for i in range(start, start + n):
        r = live.client.post("/decide", json={"customer_id": f"c-{i}", "decision_point": DP})
        assert r.status_code == 200, r.text
        body = r.json()
        reward = float(rng.random() < REWARD_P[body["action_id"]])
        ok = live.client.post("/reward", json={"event_id": body["event_id"], "reward": reward})
        assert ok.status_code == 200, ok.text
        answers.append(body)
    return answers


def _promote(home: Path, *args: str) -> str:
    done = maestro(["promote", "--decision-point", DP, *args], workspace_env(home))
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture()
def live(tmp_path: Path, live_servers: LiveServers) -> Iterator[LiveServer]:
    from serving.factory import memory_layer_from_synthetic
    from training.tracking import set_champion

    _catalog(tmp_path)
    settings = live_settings(tmp_path)
    v1 = _register(str(settings.tracking_uri), "meh", 1)
    set_champion(DP, v1, str(settings.tracking_uri))
    server = live_servers.start(settings, memory_layer_from_synthetic(50))
    yield server
    server.stop()


def test_shadow_canary_champion_then_a_bad_champion_is_rolled_back(live: LiveServer) -> None:
    import mlflow

    uri, home, rng = live.tracking_uri, live.home, random.Random(5)
    v2 = _register(uri, "good", 2)
    assert _stages(live)["stage"] == "champion"

    # shadow: logged beside the champion and evaluated as rewards arrive
    assert "shadow -> version 2" in _promote(home, "--stage", "shadow", "--version", v2)
    _wait(live, lambda b: b["shadow"] == v2 and b["shadow_eval"] is not None)
    served = _drive(live, 600, 0, rng)
    assert {a["policy_version"] for a in served} == {"1"}  # the shadow never answers
    body = _stages(live)
    est = body["shadow_eval"]
    assert est["resolved"] == 600
    # truth (pmf 0.8 on the first choice, 0.1 on each other): the champion ("meh" first)
    # 0.8·0.4 + 0.1·0.8 + 0.1·0.05 = 0.405; the shadow ("good" first) 0.685
    # (±0.2: over 3 standard errors of SNIPS at ~90 effective events of 600)
    assert est["served_value"] == pytest.approx(0.405, abs=0.1)
    assert est["shadow_snips"] == pytest.approx(0.685, abs=0.2)
    assert est["shadow_snips"] > est["served_value"]

    # canary: 30% of the customers, served (and logged) by version 2 with its own pmf
    out = _promote(home, "--stage", "canary", "--share", "0.3")
    assert "canary -> version 2" in out and "canary v2 at 30%" in out
    _wait(live, lambda b: b["stage"] == "canary" and b["guard"] is not None)
    answers = _drive(live, 400, 1000, rng)
    canary = [a for a in answers if a["policy_version"] == v2]
    assert len(canary) / len(answers) == pytest.approx(0.3, abs=0.08)
    for a in canary:  # honest probabilities: v2's floored pmf, "good" greedy
        probs = {r["action_id"]: r["probability"] for r in a["ranking"]}
        assert probs["good"] == pytest.approx(0.8, abs=1e-9)
        assert a["probability"] == pytest.approx(probs[a["action_id"]], abs=1e-12)
    assert _stages(live)["guard"]["decisions"] == 400

    # champion: the canary is promoted; the old champion is watched against at 10%
    out = _promote(home, "--stage", "champion")
    assert "champion -> version 2" in out
    _wait(live, lambda b: b["champion"] == v2 and b["stage"] == "watch")

    # an injected bad champion (it prefers "bad"), watched against v2 at a 50% share
    v3 = _register(uri, "bad", 3)
    _promote(home, "--stage", "champion", "--version", v3, "--share", "0.5")
    _wait(live, lambda b: b["champion"] == v3 and b["previous_champion"] == v2
          and b["guard"] is not None and b["guard"]["treatment"] == "champion")
    deadline_decisions, sent = ROLLBACK_WITHIN, 0
    while sent < deadline_decisions and _stages(live)["rolled_back"] is None:
        _drive(live, 25, 5000 + sent, rng)
        sent += 25
    body = _wait(live, lambda b: b["champion"] == v2, timeout=15)
    rollback = body["last_rollback"]
    assert rollback["guardrail"] == "reward"
    assert rollback["rolled_back_version"] == v3 and rollback["serving_version"] == v2
    assert rollback["decisions"] <= ROLLBACK_WITHIN
    assert rollback["log_lr"] >= rollback["threshold"]
    assert rollback["difference"] < -0.3

    # the alias moved back, and the evidence is an MLflow run
    from training.tracking import champion_version

    assert champion_version(DP, uri).version == v2
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(
        experiment_names=["maestro"], filter_string=f"tags.`rollback.decision_point` = '{DP}'"
    )
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["tags.rollback.guardrail"] == "reward"
    assert run["tags.rollback.rolled_back_version"] == v3
    assert run["metrics.log_lr"] >= run["metrics.threshold"]
    assert run["metrics.decisions"] == rollback["decisions"]
    (row,) = live.client.get("/dashboard/data").json()["stages"]
    assert row["last_rollback"].startswith(f"v{v3} (reward, ")
    # the service serves v2 to everyone again
    time.sleep(1.2)
    after = _drive(live, 50, 9000, rng)
    assert {a["policy_version"] for a in after} == {v2}


def test_the_shadow_is_logged_beside_the_champion(live: LiveServer) -> None:
    import pandas as pd

    from training.logs.schema import DECISION_SCHEMA

    v2 = _register(live.tracking_uri, "good", 2)
    _promote(live.home, "--stage", "shadow", "--version", v2)
    _wait(live, lambda b: b["shadow"] == v2 and b["shadow_eval"] is not None)
    answers = _drive(live, 60, 0, random.Random(1))
    deadline = time.monotonic() + 20
    rows = None
    while time.monotonic() < deadline:
        d = live.home / "logs" / "decisions"
        if d.exists() and any(d.glob("*.parquet")):
            rows = pd.read_parquet(d, schema=DECISION_SCHEMA)
            if len(rows) >= 60:
                break
        time.sleep(0.5)
    assert rows is not None and len(rows) == 60
    assert set(rows["shadow_policy_version"]) == {v2}
    for _, row in rows.iterrows():  # the shadow's pmf: 0.8 on "good", 0.1 on the others
        expected = 0.8 if row["action_id"] == "good" else 0.1
        assert row["shadow_logged_probability"] == pytest.approx(expected, abs=1e-9)
        assert row["policy_version"] == "1"
    assert {a["event_id"] for a in answers} == set(rows["event_id"])
    # the dashboard shows the stage
    (row,) = live.client.get("/dashboard/data").json()["stages"]
    assert (row["decision_point"], row["stage"], row["champion"], row["shadow"]) == (
        DP, "shadow", "1", v2
    )
    assert b'id="stages"' in live.client.get("/dashboard").content


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stage", "canary"], "no shadow version to move to canary"),
        (["--stage", "shadow", "--version", "99"], "no loadable version 99"),
        (["--version", "1", "--share", "0.2"], "--share: only with --stage"),
        ([], "--version: required without --stage"),
        (["--stage", "canary", "--version", "1", "--share", "1.5"], "--share"),
    ],
)
def test_bad_stage_moves_say_one_line_and_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    _catalog(tmp_path)
    _register(f"sqlite:///{tmp_path / 'mlflow.db'}", "meh", 1)
    done = maestro(["promote", "--decision-point", DP, *args], workspace_env(tmp_path))
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
