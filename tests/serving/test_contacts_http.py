"""The contact policy over HTTP on the live uvicorn server: caps counted from decisions and
``message_sent`` events, outside contacts, ``message_failed``, activation and budgets."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
from live_servers import ALL_CONSENT, LiveServer, LiveServers, live_settings

CATALOG = """
defaults:
  reward_window_hours: 24
  rules:
    consent_channels: [email, push]
    frequency_caps:
      - {channel: email, window: 7d, max: 3}
decision_points:
  default:
    actions:
      - {id: email_news, channel: email, features: {category: marketing, offer: content}}
      - {id: push_tip, channel: push, features: {category: service, offer: tip}}
      - {id: no_contact, channel: none, features: {category: none}}
    journey_priority: [email_news, push_tip, no_contact]
  confirmed:
    activation: required
    actions:
      - {id: email_coupon, channel: email, features: {category: marketing, offer: coupon},
         budget: {max: 2, per: day}}
      - {id: no_contact, channel: none, features: {category: none}}
    journey_priority: [email_coupon, no_contact]
  tight:
    rules:
      frequency_caps: [{channel: email, window: 24h, max: 1}]
      cooldowns: [{window: 48h, categories: [service]}]
    actions:
      - {id: email_once, channel: email, features: {category: marketing, offer: content}}
      - {id: push_help, channel: push, features: {category: service, offer: help}}
      - {id: no_contact, channel: none, features: {category: none}}
    journey_priority: [email_once, push_help, no_contact]
"""
CUSTOMERS = ("c-loop", "c-out", "c-act", "c-fail", "c-late", "c-budget", "c-cool")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, live_servers: LiveServers) -> LiveServer:
    from features.source import InMemoryFeatureSource
    from serving.service.feature_layer import InMemoryFeatureLayer

    home: Path = tmp_path_factory.mktemp("contacts-home")
    (home / "catalog.yaml").write_text(CATALOG)
    rows = {c: {**ALL_CONSENT, "timezone": "UTC"} for c in CUSTOMERS}
    layer = InMemoryFeatureLayer(InMemoryFeatureSource(rows))
    return live_servers.start(live_settings(home), layer)


def decide(srv: LiveServer, customer: str, point: str = "default") -> dict:
    r = srv.client.post("/decide", json={"customer_id": customer, "decision_point": point})
    assert r.status_code == 200, r.text
    body = r.json()
    ranked = [x["probability"] for x in body["ranking"]]
    assert math.isclose(sum(ranked), 1.0, abs_tol=1e-9)  # propensities over what remains
    return body


def reasons(body: dict) -> dict[str, str]:
    return {x["action_id"]: x["reason"] for x in body["excluded"]}


def event(srv: LiveServer, customer: str, kind: str, **props) -> int:
    r = srv.client.post("/events", json={"customer_id": customer, "type": kind,
                                         "properties": props})
    return r.status_code


def test_decide_then_message_sent_until_the_email_cap(srv: LiveServer) -> None:
    emails = 0
    for _ in range(60):
        body = decide(srv, "c-loop")
        if reasons(body).get("email_news") == "cap:email:7d":
            break
        assert body["action_id"] != "email_news" or emails < 3
        if body["action_id"] == "email_news":
            emails += 1
            # the journey engine confirms: the decision-time record is not counted twice
            assert event(srv, "c-loop", "message_sent", event_id=body["event_id"]) == 202
    else:
        pytest.fail("the email cap never excluded email_news")
    assert emails == 3
    assert "email_news" not in {x["action_id"] for x in body["ranking"]}


def test_an_outside_contact_counts_once_per_event(srv: LiveServer) -> None:
    ts = "2026-01-01T00:00:00Z"
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    for _ in range(3):  # one transactional email, retried: one contact
        assert srv.client.post("/events", json={
            "customer_id": "c-out", "type": "message_sent", "timestamp": now,
            "properties": {"channel": "email", "offer": "receipt"}}).status_code == 202
    assert "email_news" not in reasons(decide(srv, "c-out"))  # 1 of 3 this week
    assert reasons(decide(srv, "c-out", "tight")).get("email_once") == "cap:email:24h"
    # an old outside contact (before the window) does not count toward the 24h cap
    assert srv.client.post("/events", json={
        "customer_id": "c-cool", "type": "message_sent", "timestamp": ts,
        "properties": {"channel": "email"}}).status_code == 202
    assert "email_once" not in reasons(decide(srv, "c-cool", "tight"))
    assert event(srv, "c-out", "message_sent", channel="fax") == 422
    assert event(srv, "c-out", "message_sent") == 422


def test_message_failed_removes_the_contact(srv: LiveServer) -> None:
    for _ in range(40):  # the rules policy explores: wait for its email
        first = decide(srv, "c-fail", "tight")
        if first["action_id"] == "email_once":
            break
    assert first["action_id"] == "email_once"
    assert reasons(decide(srv, "c-fail", "tight")).get("email_once") == "cap:email:24h"
    assert event(srv, "c-fail", "message_failed", event_id=first["event_id"]) == 202
    again = decide(srv, "c-fail", "tight")
    assert "email_once" not in reasons(again)
    assert event(srv, "c-fail", "message_failed") == 422
    assert event(srv, "c-fail", "message_failed", event_id="not-an-id") == 404


def test_cooldown_after_a_service_contact(srv: LiveServer) -> None:
    assert event(srv, "c-cool", "message_sent", channel="push", action_id="push_help") == 202
    assert reasons(decide(srv, "c-cool", "tight")).get("push_help") == "cooldown:48h"


def test_activation_is_idempotent_and_only_activated_decisions_count(srv: LiveServer) -> None:
    coupons: list[dict] = []
    for _ in range(40):
        body = decide(srv, "c-act", "confirmed")
        if body["action_id"] == "email_coupon":
            coupons.append(body)
        if len(coupons) == 2:
            break
    # nothing activated yet: no contact counted; the budget of 2 is what stops coupons now
    assert len(coupons) == 2
    assert reasons(decide(srv, "c-act", "confirmed")) == {
        "email_coupon": "budget:email_coupon:day"
    }
    assert srv.service.contacts.store.read("c-act", 0.0, (), time.time()).history == ()
    eid = coupons[0]["event_id"]
    first = srv.client.post(f"/decisions/{eid}/activate")
    assert first.status_code == 200
    assert first.json() == {"event_id": eid, "activated": True, "duplicate": False}
    again = srv.client.post(f"/decisions/{eid}/activate").json()
    assert again["duplicate"] is True
    store = srv.service.contacts.store
    history = store.read("c-act", 0.0, (), time.time()).history
    assert [c.action_id for c in history] == ["email_coupon"]
    # the journey engine may confirm with a message_sent naming the decision instead
    assert event(srv, "c-act", "message_sent", event_id=coupons[1]["event_id"]) == 202
    assert event(srv, "c-act", "message_sent", event_id=coupons[1]["event_id"]) == 202
    assert len(store.read("c-act", 0.0, (), time.time()).history) == 2  # counted once
    assert store.activated([c["event_id"] for c in coupons]) == {c["event_id"] for c in coupons}
    budgets = srv.client.get("/budgets").json()["budgets"]
    assert budgets == [{"decision_point": "confirmed", "action_id": "email_coupon", "max": 2,
                        "per": "day", "period": budgets[0]["period"], "used": 2,
                        "remaining": 0}]
    assert srv.client.post("/decisions/nope/activate").status_code == 404
    late = srv.service.signer.issue(time.time() - 1.0)
    r = srv.client.post(f"/decisions/{late}/activate")
    assert r.status_code == 409 and r.json()["detail"][0]["field"] == "event_id"


def test_the_redis_contact_store_over_http(
    tmp_path_factory: pytest.TempPathFactory, live_servers: LiveServers, redis_server: int
) -> None:
    """The same caps with ``MAESTRO_CONTACT_STORE=redis`` on a real redis-server."""
    from features.source import InMemoryFeatureSource
    from serving.service.feature_layer import InMemoryFeatureLayer
    from serving.state.contacts_redis import RedisContactStore

    home: Path = tmp_path_factory.mktemp("contacts-redis-home")
    (home / "catalog.yaml").write_text(CATALOG)
    layer = InMemoryFeatureLayer(InMemoryFeatureSource({"c-r": {**ALL_CONSENT}}))
    url = f"redis://127.0.0.1:{redis_server}/0"
    srv = live_servers.start(
        live_settings(home, contact_store="redis", contact_redis_url=url), layer
    )
    assert isinstance(srv.service.contacts.store, RedisContactStore)
    assert event(srv, "c-r", "message_sent", channel="email") == 202
    assert reasons(decide(srv, "c-r", "tight")).get("email_once") == "cap:email:24h"
    srv.stop()


def test_a_redis_contact_store_needs_its_url(tmp_path: Path) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="MAESTRO_CONTACT_REDIS_URL"):
        live_settings(tmp_path, contact_store="redis")
    with pytest.raises(ValidationError, match="redis://"):
        live_settings(tmp_path, contact_redis_url="http://x")
