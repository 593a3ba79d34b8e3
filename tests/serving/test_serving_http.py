"""The HTTP contract against a real uvicorn server on 127.0.0.1 (see conftest)."""

from __future__ import annotations

import json
import math
import time

import httpx
import pandas as pd
import pytest

from serving.api.schemas import MAX_ACTIONS

pytestmark = pytest.mark.integration

CART = "cart_abandoned"


def _decide(server, **body) -> httpx.Response:
    return server.client.post("/decide", json=body)


def test_decide_contract_shape_and_probabilities(server) -> None:
    r = _decide(
        server,
        customer_id="c-all",
        decision_point=CART,
        context={"page": "checkout", "device": "mobile", "cart_value": 89.5},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {
        "event_id",
        "action_id",
        "channel",
        "probability",
        "ranking",
        "excluded",
        "policy",
        "policy_version",
        "degraded",
        "customer_known",
    }
    assert body["degraded"] is False and body["customer_known"] is True
    ranked = {x["action_id"]: x["probability"] for x in body["ranking"]}
    assert math.isclose(sum(ranked.values()), 1.0, abs_tol=1e-9)
    assert body["action_id"] in ranked
    assert math.isclose(body["probability"], ranked[body["action_id"]])
    # every catalog action is either ranked or excluded, never both
    excluded = {x["action_id"] for x in body["excluded"]}
    assert not excluded & set(ranked)
    assert len(excluded) + len(ranked) == 9


def test_explicit_actions_and_default_decision_point(server) -> None:
    actions = [
        {"id": "push_discount", "channel": "push", "features": {"category": "marketing"}},
        {"id": "email_x", "channel": "email", "features": {"category": "marketing"}},
    ]
    r = _decide(server, customer_id="c-none", actions=actions)
    assert r.status_code == 200
    body = r.json()
    # c-none has no consent at all: nothing is eligible, still 200
    assert body["action_id"] is None and body["ranking"] == []
    assert {x["reason"] for x in body["excluded"]} == {"no_consent:push", "no_consent:email"}


def test_rules_are_honoured(server) -> None:
    body = _decide(server, customer_id="c-complaint", decision_point="default").json()
    reasons = {x["action_id"]: x["reason"] for x in body["excluded"]}
    assert reasons["email_newsletter"] == "suppressed:open_complaint"
    overdue = _decide(server, customer_id="c-overdue", decision_point="default").json()
    assert overdue["action_id"] in {"no_contact"}  # only billing (none here) or no_contact


def test_draws_are_spread_with_the_logged_probability(server) -> None:
    first = _decide(server, customer_id="c-all", decision_point="onboarding").json()
    top = max(x["probability"] for x in first["ranking"])
    assert len(first["ranking"]) >= 2 and top < 1.0  # the exploration floor leaves room
    # enough draws that seeing only one action by chance has odds below one in 10^9
    draws = min(5000, math.ceil(math.log(1e-9) / math.log(top)))
    seen = {first["action_id"]}
    for _ in range(draws):
        body = _decide(server, customer_id="c-all", decision_point="onboarding").json()
        ranked = {x["action_id"]: x["probability"] for x in body["ranking"]}
        assert math.isclose(body["probability"], ranked[body["action_id"]])
        seen.add(body["action_id"])
        if len(seen) >= 2:
            break
    assert len(seen) >= 2, (draws, top)


def test_request_id_is_idempotent_and_logged_once(server) -> None:
    first = _decide(server, customer_id="c-all", decision_point=CART, request_id="retry-1").json()
    again = _decide(server, customer_id="c-all", decision_point=CART, request_id="retry-1").json()
    other = _decide(server, customer_id="c-all", decision_point=CART, request_id="retry-2").json()
    assert first == again
    assert other["event_id"] != first["event_id"]
    server.service.log.roll()
    frame = pd.read_parquet(server.home / "logs" / "decisions")
    assert (frame["event_id"] == first["event_id"]).sum() == 1


def test_decision_row_holds_what_the_policy_saw(server) -> None:
    body = _decide(
        server, customer_id="c-all", decision_point=CART, context={"page": "cart"}
    ).json()
    server.service.log.roll()
    frame = pd.read_parquet(server.home / "logs" / "decisions")
    row = frame[frame["event_id"] == body["event_id"]].iloc[0]
    assert row["customer_id"] == "c-all" and row["decision_point"] == CART
    assert json.loads(row["context"]) == {"page": "cart"}
    feats = json.loads(row["customer_features"])
    assert feats["consent_email"] is True
    actions = json.loads(row["actions"])
    probs = json.loads(row["probabilities"])
    assert [a["id"] for a in actions] and len(actions) == len(probs)
    assert math.isclose(sum(probs), 1.0, abs_tol=1e-9)
    assert row["action_id"] == body["action_id"]
    assert math.isclose(row["probability"], body["probability"])
    assert row["policy"] == body["policy"] and row["policy_version"] == body["policy_version"]


def _unknown_decisions(server, dp: str = CART) -> float:
    """``maestro_unknown_customer_decisions_total`` of ``dp`` as ``/metrics`` shows it."""
    prefix = f'maestro_unknown_customer_decisions_total{{decision_point="{dp}"}} '
    text = server.client.get("/metrics").text
    return sum(float(line[len(prefix):]) for line in text.splitlines() if line.startswith(prefix))


def test_a_mistyped_customer_id_is_decided_from_defaults_and_said_unknown(server) -> None:
    before = _unknown_decisions(server)
    known = _decide(server, customer_id="c-all", decision_point=CART).json()
    typo = _decide(server, customer_id="c-al", decision_point=CART, request_id="typo-1").json()
    routed = server.client.post("/_decide_async", json={"customer_id": "c-al",
                                                       "decision_point": CART}).json()
    replay = _decide(server, customer_id="c-al", decision_point=CART, request_id="typo-1").json()
    assert known["customer_known"] is True
    assert typo["customer_known"] is False and routed["customer_known"] is False
    assert replay == typo
    for body in (typo, routed):  # a decision all the same, from the defaults, not degraded
        assert body["degraded"] is False and body["action_id"] is not None
        assert math.isclose(sum(r["probability"] for r in body["ranking"]), 1.0, abs_tol=1e-9)
        assert all(e["reason"].startswith("no_consent:") for e in body["excluded"])
    assert _unknown_decisions(server) - before == 2.0  # the replay is not a decision
    server.service.log.roll()
    frame = pd.read_parquet(server.home / "logs" / "decisions").set_index("event_id")
    assert frame.loc[[known["event_id"], typo["event_id"], routed["event_id"]],
                     "customer_known"].tolist() == [True, False, False]


def test_a_visitor_seen_through_events_is_known(server) -> None:
    assert _decide(server, customer_id="v-visitor", decision_point=CART).json()[
        "customer_known"] is False
    event = {"customer_id": "v-visitor", "type": "page_view", "properties": {"page": "cart"}}
    assert server.client.post("/events", json=event).status_code == 202
    assert _decide(server, customer_id="v-visitor", decision_point=CART).json()[
        "customer_known"] is True


def test_rewards_duplicate_unknown_and_late(server) -> None:
    event_id = _decide(server, customer_id="c-all", decision_point=CART).json()["event_id"]
    first = server.client.post("/reward", json={"event_id": event_id, "reward": 1.0})
    assert first.status_code == 200
    assert first.json() == {"event_id": event_id, "accepted": True, "duplicate": False}
    dup = server.client.post("/reward", json={"event_id": event_id, "reward": 1.0})
    assert dup.status_code == 200 and dup.json()["duplicate"] is True

    forged = event_id[:-1] + ("0" if event_id[-1] != "0" else "1")
    r = server.client.post("/reward", json={"event_id": forged, "reward": 1.0})
    assert r.status_code == 404 and r.json()["detail"][0]["field"] == "event_id"
    r = server.client.post("/reward", json={"event_id": "not-an-id", "reward": 1.0})
    assert r.status_code == 404

    # an id this workspace issued whose window ended a second ago
    late_id = server.service.signer.issue(time.time() - 1.0)
    r = server.client.post("/reward", json={"event_id": late_id, "reward": 1.0})
    assert r.status_code == 409, r.text
    server.service.log.roll()
    rewards = pd.read_parquet(server.home / "logs" / "rewards")
    mine = rewards[rewards["event_id"] == event_id]
    assert list(mine["counted"]) == [True, False] and list(mine["duplicate"]) == [False, True]
    late = rewards[rewards["event_id"] == late_id]
    assert len(late) == 1 and bool(late["late"].iloc[0]) and not bool(late["counted"].iloc[0])


BAD_BODIES = [
    ({"decision_point": CART}, "customer_id"),
    ({"customer_id": "c-all", "bogus": 1}, "bogus"),
    ({"customer_id": "c-all", "context": {"x": [1, 2]}}, "context.x"),
    ({"customer_id": "c-all", "context": {f"k{i}": i for i in range(100)}}, "context"),
    ({"customer_id": "c-all", "decision_point": "nope"}, "decision_point"),
    ({"customer_id": "c-all", "actions": []}, "actions"),
    (
        {
            "customer_id": "c-all",
            "actions": [{"id": f"a{i}", "channel": "email"} for i in range(MAX_ACTIONS + 1)],
        },
        "actions",
    ),
    ({"customer_id": "c-all", "actions": [{"id": "a", "channel": "pigeon"}]}, "actions.0.channel"),
    (
        {"customer_id": "c-all", "actions": [{"id": "a", "channel": "email", "extra": 1}]},
        "actions.0.extra",
    ),
    (
        {
            "customer_id": "c-all",
            "actions": [{"id": "a", "channel": "email"}, {"id": "a", "channel": "push"}],
        },
        "actions",
    ),
    ({"customer_id": 42}, "customer_id"),
    ({"customer_id": ""}, "customer_id"),
]


@pytest.mark.parametrize(
    ("body", "field"), BAD_BODIES, ids=[b[1] + str(i) for i, b in enumerate(BAD_BODIES)]
)
def test_malformed_decide_bodies_are_4xx_naming_the_field(server, body, field) -> None:
    r = server.client.post("/decide", json=body)
    assert 400 <= r.status_code < 500, r.text
    fields = [d["field"] for d in r.json()["detail"]]
    assert any(f == field or f.startswith(field + ".") for f in fields), fields
    assert all(d["problem"] for d in r.json()["detail"])


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"customer_id": "c-all", "context": {"x": NaN}}', "context.x"),
        (b'{"customer_id": "c-all", "context": {"x": -Infinity}}', "context.x"),
        (b'{"customer_id": "c-all", "context": {"x": 1e999}}', "context.x"),
        (b'{"customer_id": "c-all",', "body"),
        (b"[]", "body"),
    ],
    ids=["nan", "neg-inf", "overflow-inf", "truncated-json", "not-an-object"],
)
def test_non_json_numbers_and_broken_json(server, raw, field) -> None:
    r = server.client.post("/decide", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert any(d["field"].startswith(field) for d in r.json()["detail"])


def test_bad_reward_and_event_bodies(server) -> None:
    r = server.client.post("/reward", json={"event_id": "x", "reward": "lots"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "reward"
    r = server.client.post(
        "/reward",
        content=b'{"event_id": "x", "reward": NaN}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "reward"
    r = server.client.post("/events", json={"customer_id": "c-all", "type": "teleported"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "type"
    r = server.client.post(
        "/events",
        json={"customer_id": "c-all", "type": "consent_changed", "properties": {"channel": "sms"}},
    )
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "properties.granted"


def test_body_over_64_kib_is_rejected(server) -> None:
    big = {"customer_id": "c-all", "context": {"blob": "x" * 500}, "pad": "y" * 70_000}
    r = server.client.post("/decide", json=big)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "body"

    def chunks():
        yield b'{"customer_id": "c-all", "pad": "'
        for _ in range(80):
            yield b"z" * 1024
        yield b'"}'

    r = server.client.post(
        "/decide", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 422, r.text
    assert _decide(server, customer_id="c-all").status_code == 200  # the server is fine


@pytest.mark.parametrize(
    "raw",
    [json.dumps(b).encode() for b, _ in BAD_BODIES]
    + [
        b'{"customer_id": "c-all", "context": {"x": NaN}}',
        b'{"customer_id": "c-all", "context": {"x": 1e999}}',
        b'{"customer_id": "c-all",',
        b"[]",
        b"",
    ],
)
def test_direct_decide_route_refuses_like_the_fastapi_route(server, raw) -> None:
    """``/decide`` is answered without FastAPI's router (serving/api/direct.py): for every
    malformed body it gives the same status and names the same fields as the FastAPI
    route of the same handler (``/_decide_async``)."""
    headers = {"content-type": "application/json"}
    direct = server.client.post("/decide", content=raw, headers=headers)
    routed = server.client.post("/_decide_async", content=raw, headers=headers)
    assert 400 <= direct.status_code < 500, direct.text
    assert direct.status_code == routed.status_code, (direct.text, routed.text)
    fields = sorted(d["field"] for d in direct.json()["detail"])
    assert fields == sorted(d["field"] for d in routed.json()["detail"]), (direct.text, routed.text)
    assert all(d["problem"] and d["type"] for d in direct.json()["detail"])


def test_direct_decide_route_keeps_method_and_auth_checks(server) -> None:
    """The direct route answers only ``POST /decide`` after the API-key guard."""
    assert server.client.get("/decide").status_code == 405
    r = httpx.post(f"{server.base_url}/decide", json={"customer_id": "c-all"}, timeout=10)
    assert r.status_code == 401 and r.json()["detail"][0]["field"] == "authorization"
    ok = server.client.post("/decide", json={"customer_id": "c-all", "decision_point": CART})
    assert ok.status_code == 200 and ok.headers["content-type"] == "application/json"
    assert int(ok.headers["content-length"]) == len(ok.content) and ok.json()["event_id"]
