"""The service as ``maestro serve`` builds it, on a real Feast workspace (SQLite online
store under tmp_path) behind a real uvicorn server: features read from Feast are the ones
logged, ``/events`` changes the next decision, the store made unreachable degrades to
rules, and erasure reaches the online store."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

pytestmark = pytest.mark.integration
CART = "cart_abandoned"


@pytest.fixture(scope="module")
def feast_server(
    tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str, helpers
) -> Iterator[dict]:
    import uvicorn

    from features.workspace import init_feature_workspace
    from serving.engines.runner import uvicorn_config
    from serving.factory import build_app
    from serving.settings import Settings

    home = tmp_path_factory.mktemp("feast-home")
    init_feature_workspace(home, customers=50, seed=5)
    settings = Settings(
        home=home,
        mlflow_tracking_uri=mlflow_uri,
        roll_seconds=0.5,
        # this suite checks Feast in the decision, not latency: a loaded CI machine must
        # not turn the first, cold decision into the time-budget fallback or a refusal
        time_budget_ms=2000.0,
        admission_queue_ms=10_000.0,
    )
    assert settings.feature_source == "feast"
    app = build_app(settings)
    port = helpers.free_port()
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    helpers.wait_http(f"{base}/healthz", timeout=120)
    with httpx.Client(base_url=base, timeout=10) as client:
        yield {"client": client, "home": home, "service": app.state.service}
    server.should_exit = True
    thread.join(timeout=30)


def _features_logged(home: Path, service, event_id: str) -> dict:
    service.log.roll()
    frame = pd.read_parquet(home / "logs" / "decisions")
    return json.loads(frame[frame["event_id"] == event_id].iloc[0]["customer_features"])


def test_decisions_use_and_log_feast_features(feast_server) -> None:
    from features.feast.source import FeastFeatureSource

    c, home, service = feast_server["client"], feast_server["home"], feast_server["service"]
    assert c.get("/readyz").status_code == 200
    body = c.post("/decide", json={"customer_id": "c-000007", "decision_point": CART}).json()
    assert body["degraded"] is False
    logged = _features_logged(home, service, body["event_id"])
    direct = FeastFeatureSource(home / "feature_repo").get("c-000007").values
    for name in ("segment", "tier", "consent_email", "consent_sms", "sends_email_7d", "churn_risk"):
        assert logged[name] == direct[name], name
    reasons = {x["action_id"]: x["reason"] for x in body["excluded"]}
    if not direct["consent_sms"]:
        assert reasons["sms_discount"] == "no_consent:sms"


def test_consent_event_holds_from_the_next_decide(feast_server) -> None:
    c = feast_server["client"]
    for granted in (True, False):
        r = c.post(
            "/events",
            json={
                "customer_id": "c-000011",
                "type": "consent_changed",
                "properties": {"channel": "email", "granted": granted},
            },
        )
        assert r.status_code == 202, r.text
        body = c.post("/decide", json={"customer_id": "c-000011", "decision_point": CART}).json()
        reasons = {x["action_id"]: x["reason"] for x in body["excluded"]}
        if granted:
            assert reasons.get("email_reminder") != "no_consent:email"
        else:
            assert reasons["email_reminder"] == "no_consent:email"
    bad = c.post(
        "/events",
        json={
            "customer_id": "c-000011",
            "type": "consent_changed",
            "properties": {"channel": "pigeon", "granted": True},
        },
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "properties.channel"


def test_unreachable_online_store_degrades_to_rules(feast_server) -> None:
    c, home = feast_server["client"], feast_server["home"]
    db = home / "feature_repo" / "data" / "online_store.db"
    assert db.exists()
    moved = db.with_name("online_store.db.away")
    os.replace(db, moved)
    try:
        assert c.get("/readyz").status_code == 503
        body = c.post("/decide", json={"customer_id": "c-000007", "decision_point": CART}).json()
        assert body["degraded"] is True and body["policy"] == "rules"
        assert body["customer_known"] is None  # the store cannot say whether it holds them
        reasons = {x["reason"] for x in body["excluded"]}
        assert {"no_consent:email", "no_consent:push", "no_consent:sms"} <= reasons
    finally:
        os.replace(moved, db)
    body = c.post("/decide", json={"customer_id": "c-000007", "decision_point": CART}).json()
    assert body["degraded"] is False and body["customer_known"] is True


def test_unknown_ids_are_said_unknown_until_events_make_a_visitor(feast_server) -> None:
    c = feast_server["client"]
    known = c.post("/decide", json={"customer_id": "c-000007", "decision_point": CART}).json()
    typo = c.post("/decide", json={"customer_id": "c-0000007", "decision_point": CART}).json()
    assert known["customer_known"] is True and known["degraded"] is False
    assert typo["customer_known"] is False and typo["degraded"] is False
    assert all(x["reason"].startswith("no_consent:") for x in typo["excluded"])  # defaults
    event = {"customer_id": "v-feast-1", "type": "page_view", "properties": {"page": "cart"}}
    assert c.post("/events", json=event).status_code == 202
    visitor = c.post("/decide", json={"customer_id": "v-feast-1", "decision_point": CART}).json()
    assert visitor["customer_known"] is True
    assert 'maestro_unknown_customer_decisions_total{decision_point="cart_abandoned"}' in (
        c.get("/metrics").text
    )


def test_erase_reaches_the_online_store(feast_server) -> None:
    c = feast_server["client"]
    c.post("/decide", json={"customer_id": "c-000013", "decision_point": CART})
    r = c.delete("/customers/c-000013")
    assert r.status_code == 200, r.text
    erased = r.json()["erased"]
    assert erased["online_values"] > 0 and erased["decisions"] >= 1
