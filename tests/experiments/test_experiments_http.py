"""A live server with an experiments config, fed by the simulator: what it logs, what
``GET /experiments`` and ``maestro report`` say."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import httpx
import pandas as pd

LiveServer = Any  # tests/experiments/conftest.py: ExperimentServer


def _logged(server: LiveServer) -> pd.DataFrame:
    server.wait_rolled()
    frame = pd.read_parquet(server.home / "logs" / "decisions")
    return frame.drop_duplicates("event_id")


def test_experiments_needs_the_api_key(live_server: LiveServer) -> None:
    for path in ("/experiments", "/dashboard", "/dashboard/data"):
        assert httpx.get(live_server.base_url + path).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert httpx.get(live_server.base_url + path, headers=wrong).status_code == 401


def test_every_decision_logs_its_variant(live_server: LiveServer) -> None:
    frame = _logged(live_server)
    # the simulator's run (the browser test may have fed more on the same server)
    assert len(frame) >= live_server.steps
    cart = frame[frame["decision_point"] == "cart_abandoned"]
    assert set(cart["variant"]) == {"champion", "rules", "challenger", "holdout"}
    others = frame[frame["decision_point"] != "cart_abandoned"]
    assert set(others["variant"]) <= {"champion", "holdout"}
    # the holdout is a deterministic arm: no_contact with probability 1
    hold = frame[frame["variant"] == "holdout"]
    assert len(hold) > 0
    assert set(hold["action_id"]) == {"no_contact"}
    assert (hold["probability"] == 1.0).all()
    assert set(hold["policy"]) == {"holdout"}
    # the challenger is the registered MLflow version; rules are the journey rules
    chal = frame[frame["variant"] == "challenger"]
    assert set(chal["policy"]) == {"linucb"}
    assert set(chal["policy_version"]) == {live_server.challenger_version}
    assert set(frame.loc[frame["variant"] == "rules", "policy_version"]) == {"rules"}
    # sticky: one variant per customer and decision point; the holdout is global
    per = frame.groupby(["customer_id", "decision_point"])["variant"].nunique()
    assert (per == 1).all()
    held = set(hold["customer_id"])
    assert set(frame.loc[frame["customer_id"].isin(held), "variant"]) == {"holdout"}


def test_experiments_json_matches_the_logs(live_server: LiveServer) -> None:
    frame = _logged(live_server)
    body = live_server.client.get("/experiments").json()
    assert body["config"]["holdout"] == 0.15 and body["config"]["salt"] == "e2e"
    counts = frame.groupby(["decision_point", "variant"]).size().to_dict()
    seen = {}
    for dp, entry in body["decision_points"].items():
        for v in entry["variants"]:
            seen[(dp, v["variant"])] = v["decisions"]
            assert v["rewards"] <= v["decisions"] and v["matured"] <= v["decisions"]
            assert v["ci_low"] <= v["mean_reward"] <= v["ci_high"]
            if v["variant"] != "holdout" and v["lift"].get("holdout"):
                lift = v["lift"]["holdout"]
                assert lift["ci_low"] <= lift["diff"] <= lift["ci_high"]
                assert lift["sample_size"]["required"]["baseline"] >= 1
    assert seen == counts
    cart = {v["variant"]: v for v in body["decision_points"]["cart_abandoned"]["variants"]}
    # every simulated decision got its reward posted
    assert sum(v["rewards"] for v in cart.values()) == sum(v["decisions"] for v in cart.values())
    assert set(cart["champion"]["lift"]) == {"holdout", "rules"}


def test_maestro_report_prints_the_same_figures(live_server: LiveServer) -> None:
    body = live_server.wait_rolled()
    env = {**os.environ, "MAESTRO_HOME": str(live_server.home),
           "MLFLOW_TRACKING_URI": live_server.tracking_uri}
    cmd = [sys.executable, "-m", "cli.main", "report"]
    text = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert text.returncode == 0, text.stderr
    assert "salt 'e2e', holdout 15.0%" in text.stdout
    assert "== cart_abandoned" in text.stdout and "challenger" in text.stdout
    from click.testing import CliRunner

    from cli.main import cli
    from serving.experiments.variants import report_command
    from serving.settings import Settings

    settings = Settings(home=live_server.home, mlflow_tracking_uri=live_server.tracking_uri)
    printed = json.loads(report_command(settings, as_json=True))
    assert printed["config"]["decision_points"]["cart_abandoned"][2]["version"] == (
        live_server.challenger_version
    )
    for dp, entry in body["decision_points"].items():
        assert [v["decisions"] for v in printed["decision_points"][dp]["variants"]] == [
            v["decisions"] for v in entry["variants"]
        ]
    assert CliRunner().invoke(cli, ["report", "--mde", "-1"]).exit_code == 2


def test_erase_forgets_the_assignment(live_server: LiveServer) -> None:
    frame = _logged(live_server)
    cid = str(frame["customer_id"].iloc[0])
    answer = live_server.client.delete(f"/customers/{cid}")
    assert answer.status_code == 200
    assert answer.json()["erased"]["experiment_assignments"] >= 1
