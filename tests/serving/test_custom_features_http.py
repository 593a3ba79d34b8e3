"""A custom numeric feature added in ``features.yaml`` — no Python change — reaches the
decision over HTTP: ``maestro apply``, ``load`` and ``materialize`` put it in the online
store, ``/decide``'s logged context carries it, and an ``eligibility`` rule on it in the
workspace's catalog excludes an action for a customer below the bar (and only then)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from custom_features import (
    billing,
    custom_declaration,
    maestro,
    write_billing,
    write_crm,
    write_declaration,
)
from live_servers import serve_in_thread

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
RULE = "      eligibility: [{feature: credit_score, min: 700, actions: [in_app_banner]}]\n"


def _maestro(home: Path, *args: str) -> str:
    done = maestro(home, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _catalog(home: Path) -> None:
    """The shipped catalog with an eligibility rule on credit_score at ``default``."""
    text = (ROOT / "policies" / "catalog.yaml").read_text()
    anchor = (
        "      escalation: {channels: [call_center], churn_risk: 0.6, rapid_clicks: 3, "
        "open_complaint: true}\n"
    )
    assert text.index(anchor) < text.index("  cart_abandoned:")  # the first: ``default``'s
    (home / "catalog.yaml").write_text(text.replace(anchor, anchor + RULE, 1))


@pytest.fixture(scope="module")
def custom_server(tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str) -> Iterator[dict]:
    from features.workspace import init_feature_workspace
    from serving.factory import build_app
    from serving.settings import Settings

    home = tmp_path_factory.mktemp("custom-home")
    init_feature_workspace(home, customers=20, seed=4)
    write_crm(home, ["c-000001,2026-01-01T00:00:00Z,720,Y", "c-000002,2026-01-01T00:00:00Z,650,N"])
    write_billing(home, billing(["c-000001"], [1], ["basic"]))
    write_declaration(home, custom_declaration())
    _maestro(home, "apply")
    assert _maestro(home, "load", "crm").startswith("source crm: 2 rows read, 2 staged")
    _maestro(home, "materialize")
    _catalog(home)
    settings = Settings(
        home=home,
        mlflow_tracking_uri=mlflow_uri,
        roll_seconds=0.5,
        time_budget_ms=2000.0,
        admission_queue_ms=10_000.0,
    )
    app = build_app(settings)
    with serve_in_thread(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        yield {"client": client, "home": home, "service": app.state.service}


def _logged(server: dict, event_id: str) -> dict:
    server["service"].log.roll()
    frame = pd.read_parquet(server["home"] / "logs" / "decisions")
    return json.loads(frame[frame["event_id"] == event_id].iloc[0]["customer_features"])


def _decide(server: dict, customer: str) -> dict:
    body = server["client"].post("/decide", json={"customer_id": customer}).json()
    assert body["degraded"] is False, body
    return body


def test_the_custom_feature_is_in_the_decision_context(custom_server: dict) -> None:
    body = _decide(custom_server, "c-000001")
    logged = _logged(custom_server, body["event_id"])
    assert (logged["credit_score"], logged["has_mortgage"]) == (720, True)
    assert logged["products_held"] == 0  # billing never loaded: the declared default


def test_an_eligibility_rule_on_the_custom_feature(custom_server: dict) -> None:
    def reasons(customer: str) -> dict[str, str]:
        return {x["action_id"]: x["reason"] for x in _decide(custom_server, customer)["excluded"]}

    assert reasons("c-000002").get("in_app_banner") == "ineligible:credit_score"  # 650 < 700
    assert "in_app_banner" not in reasons("c-000001")  # 720
    assert reasons("c-000003").get("in_app_banner") == "ineligible:credit_score"  # default 0
