"""Auth, events, degraded answers, kill switch and apprentice, agent routing, erasure and
the ops endpoints, against the real uvicorn server of conftest."""

from __future__ import annotations

import json
import math
import time

import httpx
import pandas as pd
import pytest

pytestmark = pytest.mark.integration

CART = "cart_abandoned"


def _decide(server, **body) -> httpx.Response:
    return server.client.post("/decide", json=body)


def test_auth_and_key_rotation(server, api_keys) -> None:
    body = {"customer_id": "c-all"}
    with httpx.Client(base_url=server.base_url, timeout=10) as anon:
        assert anon.post("/decide", json=body).status_code == 401
        assert anon.post("/reward", json={"event_id": "x", "reward": 1}).status_code == 401
        assert anon.get("/readyz").status_code == 401
        assert anon.get("/openapi.json").status_code == 401
        wrong = anon.post("/decide", json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["detail"][0]["field"] == "authorization"
        basic = anon.post("/decide", json=body, headers={"Authorization": f"Basic {api_keys[0]}"})
        assert basic.status_code == 401
        # the open endpoints
        assert anon.get("/healthz").status_code == 200
        assert anon.get("/metrics").status_code == 200
        # both keys of the rotation are accepted
        for key in api_keys:
            r = anon.post("/decide", json=body, headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 200, key


def test_keys_never_reach_the_logs(server, api_keys, caplog) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as anon:
        anon.post(
            "/decide",
            json={"customer_id": "c-all"},
            headers={"Authorization": f"Bearer {api_keys[0]}"},
        )
        anon.post(
            "/decide", json={"customer_id": "c-all"}, headers={"Authorization": "Bearer bad-key"}
        )
    text = caplog.text + "".join(p.read_text(errors="ignore") for p in server.home.rglob("*.log"))
    assert api_keys[0] not in text and "bad-key" not in text
    assert api_keys[0] not in repr(server.settings)


def test_events_make_consent_revocation_hold_at_once(server) -> None:
    before = _decide(server, customer_id="c-events", decision_point=CART).json()
    assert not any(x["reason"] == "no_consent:email" for x in before["excluded"])
    r = server.client.post(
        "/events",
        json={
            "customer_id": "c-events",
            "type": "consent_changed",
            "properties": {"channel": "email", "granted": False},
            "timestamp": "2026-01-01T00:00:00Z",
        },
    )
    assert r.status_code == 202, r.text
    after = _decide(server, customer_id="c-events", decision_point=CART).json()
    reasons = {x["action_id"]: x["reason"] for x in after["excluded"]}
    assert reasons["email_reminder"] == reasons["email_discount"] == "no_consent:email"
    assert after["action_id"] not in {"email_reminder", "email_discount"}
    server.client.post("/events", json={"customer_id": "c-events", "type": "complaint_opened"})
    body = _decide(server, customer_id="c-events", decision_point=CART).json()
    assert any(x["reason"] == "suppressed:open_complaint" for x in body["excluded"])


def test_feature_store_down_gives_degraded_rules_answers(server) -> None:
    server.layer.available = False
    try:
        assert server.client.get("/readyz").status_code == 503
        for _ in range(5):
            r = _decide(server, customer_id="c-all", decision_point=CART)
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["degraded"] is True and body["policy"] == "rules"
            assert body["customer_known"] is None  # the store cannot say: unknowable
            # features unknown: no consent is assumed, so every consent channel is excluded
            reasons = {x["reason"] for x in body["excluded"]}
            assert {"no_consent:email", "no_consent:push", "no_consent:sms"} <= reasons
            assert body["action_id"] in {"in_app_free_shipping", "no_contact"}
            assert math.isclose(sum(x["probability"] for x in body["ranking"]), 1.0)
    finally:
        server.layer.available = True
    assert server.client.get("/readyz").status_code == 200
    assert _decide(server, customer_id="c-all", decision_point=CART).json()["degraded"] is False
    assert "maestro_degraded_decisions_total" in server.client.get("/metrics").text


def test_a_broken_stored_feature_degrades_instead_of_blaming_the_client(server) -> None:
    server.layer.source.update("c-nan", {**{"consent_email": True}, "churn_risk": float("nan")})
    r = _decide(server, customer_id="c-nan", decision_point=CART)
    assert r.status_code == 200, r.text
    assert r.json()["degraded"] is True
    assert r.json()["customer_known"] is True  # the row exists; one value in it is broken
    assert "no_consent:email" in {x["reason"] for x in r.json()["excluded"]}  # defaults


def test_read_only_records_are_checked_once_and_logged_as_served(server, monkeypatch) -> None:
    """A read-only record (what the Feast source serves) is checked and encoded once and
    remembered by identity; one with a broken value is never remembered: every decision
    with it degrades."""
    from types import MappingProxyType

    from features.schema import DEFAULTS
    from features.source import CustomerFeatures

    good = MappingProxyType({"consent_email": True, "timezone": "UTC", "churn_risk": 0.25})
    bad = MappingProxyType({"consent_email": True, "churn_risk": float("nan")})
    served = {"c-ro-good": good, "c-ro-bad": bad}
    monkeypatch.setattr(
        server.service.features, "get", lambda cid: CustomerFeatures(cid, served[cid], known=True)
    )
    ids = [
        _decide(server, customer_id=cid, decision_point=CART).json()
        for cid in ("c-ro-good", "c-ro-good", "c-ro-bad", "c-ro-bad")
    ]
    assert [b["degraded"] for b in ids] == [False, False, True, True]
    assert server.service._records[id(good)][0] is good
    assert id(bad) not in server.service._records
    server.service.log.roll()
    frame = pd.read_parquet(server.home / "logs" / "decisions")
    logged = frame.set_index("event_id").loc[[b["event_id"] for b in ids], "customer_features"]
    assert [json.loads(x) for x in logged[:2]] == [dict(good), dict(good)]
    # the broken record was not served: the defaults were, and they are what is logged
    assert [json.loads(x) for x in logged[2:]] == [dict(DEFAULTS), dict(DEFAULTS)]


def test_policy_failure_and_time_budget_fall_back(server, monkeypatch) -> None:
    from serving.service.decision_service import ServiceOptions

    champion = server.service.policies.get(CART).policy

    def boom(*_a, **_k):
        raise RuntimeError("model exploded")

    monkeypatch.setattr(champion, "raw_pmf", boom)
    body = _decide(server, customer_id="c-all", decision_point=CART).json()
    assert body["degraded"] is True and body["policy_version"] == "fallback"
    monkeypatch.undo()

    def slow(*args, **kwargs):
        time.sleep(0.02)
        return type(champion).raw_pmf(champion, *args, **kwargs)

    monkeypatch.setattr(champion, "raw_pmf", slow)
    monkeypatch.setattr(server.service, "_budget", 0.005)
    body = _decide(server, customer_id="c-all", decision_point=CART).json()
    assert body["degraded"] is True
    assert ServiceOptions().time_budget_ms == 50.0


def test_kill_switch_and_apprentice(server, monkeypatch) -> None:
    from serving.service.decision_service import ServiceOptions

    monkeypatch.setattr(server.service, "options", ServiceOptions(kill_switch=True))
    body = _decide(server, customer_id="c-all", decision_point=CART).json()
    assert (
        body["policy"] == "rules" and body["policy_version"] == "fallback" and not body["degraded"]
    )
    monkeypatch.setattr(server.service, "options", ServiceOptions(apprentice=True))
    body = _decide(server, customer_id="c-all", decision_point=CART).json()
    assert body["policy"] == "rules"
    server.service.log.roll()
    frame = pd.read_parquet(server.home / "logs" / "decisions")
    row = frame[frame["event_id"] == body["event_id"]].iloc[0]
    assert row["variant"] == "apprentice"
    assert row["shadow_policy"] == server.service.policies.get(CART).policy.kind
    assert isinstance(row["shadow_action_id"], str)


def test_agent_routing(server) -> None:
    agents = [
        {
            "id": "agent-1",
            "channel": "agent",
            "features": {
                "skills": "billing",
                "level": 3,
                "languages": "es,en",
                "load": 0,
                "capacity": 5,
            },
        },
        {
            "id": "agent-2",
            "channel": "agent",
            "features": {
                "skills": "technical",
                "level": 3,
                "languages": "en",
                "load": 0,
                "capacity": 5,
            },
        },
        {
            "id": "agent-3",
            "channel": "agent",
            "features": {
                "skills": "technical,billing",
                "level": 2,
                "languages": "es",
                "load": 5,
                "capacity": 5,
            },
        },
        {
            "id": "agent-4",
            "channel": "agent",
            "features": {
                "skills": "technical",
                "level": 2,
                "languages": "es,en",
                "load": 1,
                "capacity": 5,
            },
        },
    ]
    body = _decide(
        server,
        customer_id="c-all",
        decision_point="agent_routing",
        actions=agents,
        context={"required_skill": "technical", "required_level": 2, "language": "es"},
    ).json()
    reasons = {x["action_id"]: x["reason"] for x in body["excluded"]}
    assert reasons == {"agent-1": "skill", "agent-2": "language", "agent-3": "capacity"}
    assert body["action_id"] == "agent-4" and math.isclose(body["probability"], 1.0)


def test_erase_customer(server) -> None:
    eid = _decide(server, customer_id="c-erase", decision_point=CART).json()["event_id"]
    server.client.post("/reward", json={"event_id": eid, "reward": 1.0})
    server.service.log.roll()
    _decide(server, customer_id="c-erase", decision_point=CART)  # one still in the spool
    r = server.client.delete("/customers/c-erase")
    assert r.status_code == 200
    erased = r.json()["erased"]
    assert erased["online"] == 1 and erased["decisions"] == 2 and erased["rewards"] >= 1
    server.service.log.roll()
    # the logs may hold nobody else's rows when this module runs alone: an empty dataset
    # has no columns
    decisions = pd.read_parquet(server.home / "logs" / "decisions")
    assert "c-erase" not in set(decisions.get("customer_id", ()))
    rewards = pd.read_parquet(server.home / "logs" / "rewards")
    assert eid not in set(rewards.get("event_id", ()))


def test_ops_endpoints(server) -> None:
    assert server.client.get("/healthz").json() == {"status": "ok"}
    ready = server.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    _decide(server, customer_id="c-all", decision_point=CART)
    text = server.client.get("/metrics").text
    for name in (
        "maestro_decisions_total{",
        "maestro_decide_latency_seconds_bucket",
        "maestro_rewards_total",
        "maestro_log_unsynced_seconds",
        "maestro_log_seconds_since_roll",
    ):
        assert name in text
    assert 'decision_point="cart_abandoned"' in text and 'channel="' in text
    spec = server.client.get("/openapi.json").json()
    assert {
        "/decide",
        "/reward",
        "/events",
        "/customers/{customer_id}",
        "/healthz",
        "/readyz",
        "/metrics",
    } <= set(spec["paths"])
    decide_schema = spec["components"]["schemas"]["DecideRequest"]
    assert decide_schema["additionalProperties"] is False
