"""Outcome events as rewards over HTTP on the live uvicorn server: decisions →
message_sent → purchase → attributed reward rows in the rolled log, which training reads;
a duplicate outcome counted once; /reward and an outcome never both counted; malformed
outcomes refused with the field named."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from live_servers import ALL_CONSENT, LiveServer, LiveServers, live_settings

TOL = 1e-9
CATALOG = """
defaults:
  reward_window_hours: 24
  rules: {consent_channels: [email, push]}
  rewards: {purchase: properties.value, message_clicked: 0.2}
  attribution: linear
decision_points:
  default:
    actions:
      - {id: email_offer, channel: email, features: {category: marketing, offer: discount}}
      - {id: push_offer, channel: push, features: {category: marketing, offer: discount}}
    journey_priority: [email_offer, push_offer]
"""
CUSTOMERS = ("c-buy", "c-reward", "c-bad")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, live_servers: LiveServers) -> LiveServer:
    from features.source import InMemoryFeatureSource
    from serving.service.feature_layer import InMemoryFeatureLayer

    home: Path = tmp_path_factory.mktemp("outcomes-home")
    (home / "catalog.yaml").write_text(CATALOG)
    rows = {c: {**ALL_CONSENT, "timezone": "UTC"} for c in CUSTOMERS}
    layer = InMemoryFeatureLayer(InMemoryFeatureSource(rows))
    return live_servers.start(live_settings(home), layer)


def decide(srv: LiveServer, customer: str) -> str:
    r = srv.client.post("/decide", json={"customer_id": customer, "decision_point": "default"})
    assert r.status_code == 200, r.text
    assert r.json()["action_id"] in ("email_offer", "push_offer")
    return str(r.json()["event_id"])


def post_event(srv: LiveServer, customer: str, kind: str, **props: object):
    stamp = datetime.now(UTC).isoformat()
    return srv.client.post("/events", json={"customer_id": customer, "type": kind,
                                            "properties": props, "timestamp": stamp})


def rolled_rewards(srv: LiveServer, event_ids: set[str], n: int) -> pd.DataFrame:
    """The rolled reward rows of ``event_ids``, once ``n`` of them are in Parquet."""
    deadline = time.monotonic() + 30
    while True:
        parts = sorted((srv.settings.logs_dir / "rewards").glob("*.parquet"))
        rows = pd.concat([pd.read_parquet(p) for p in parts]) if parts else pd.DataFrame()
        rows = rows[rows["event_id"].isin(event_ids)] if len(rows) else rows
        if len(rows) >= n or time.monotonic() > deadline:
            return rows.reset_index(drop=True)
        time.sleep(0.2)


def test_purchase_after_two_contacts_is_attributed_learned_and_counted_once(
    srv: LiveServer,
) -> None:
    from training.data import load_training_set

    ids = [decide(srv, "c-buy"), decide(srv, "c-buy")]
    for eid in ids:
        assert post_event(srv, "c-buy", "message_sent", event_id=eid).status_code == 202
    body = {"customer_id": "c-buy", "type": "purchase", "properties": {"value": 100.0},
            "timestamp": datetime.now(UTC).isoformat()}
    r = srv.client.post("/events", json=body)
    assert r.status_code == 202, r.text
    shares = {x["event_id"]: x for x in r.json()["rewards"]}
    assert set(shares) == set(ids)
    for x in shares.values():
        assert x["reward"] == pytest.approx(50.0, abs=TOL)
        assert x["counted"] and x["attribution"] == "linear"
    again = srv.client.post("/events", json=body)  # a retried post: no second reward
    assert again.status_code == 202 and again.json()["rewards"] == []
    late = srv.client.post("/reward", json={"event_id": ids[0], "reward": 7.0})
    assert late.status_code == 200 and late.json()["duplicate"] is True

    rows = rolled_rewards(srv, set(ids), 3)
    counted = rows[rows["counted"]]
    assert len(counted) == 2
    assert counted["reward"].sum() == pytest.approx(100.0, abs=TOL)
    assert set(counted["source"]) == {"outcome:purchase"}
    assert set(counted["attribution"]) == {"linear"}
    posted = rows[rows["source"] == "reward"]
    assert len(posted) == 1 and not posted["counted"].iloc[0]

    metrics = srv.client.get("/metrics").text
    assert 'maestro_rewards_total{outcome="outcome_accepted"} 2.0' in metrics

    data = load_training_set(srv.settings.logs_dir, srv.service.catalog, time.time())
    learned = dict(zip(data.frame["event_id"], data.frame["reward"], strict=True))
    assert [learned[e] for e in ids] == pytest.approx([50.0, 50.0], abs=TOL)


def test_a_posted_reward_first_leaves_the_outcome_uncounted(srv: LiveServer) -> None:
    eid = decide(srv, "c-reward")
    r = srv.client.post("/reward", json={"event_id": eid, "reward": 1.0})
    assert r.status_code == 200 and r.json()["duplicate"] is False
    r = post_event(srv, "c-reward", "purchase", value=30.0)
    assert r.status_code == 202
    assert [(x["event_id"], x["counted"]) for x in r.json()["rewards"]] == [(eid, False)]
    rows = rolled_rewards(srv, {eid}, 2)
    assert rows[rows["counted"]]["reward"].tolist() == pytest.approx([1.0], abs=TOL)


@pytest.mark.parametrize(
    ("kind", "props", "status", "field"),
    [
        ("purchase", {}, 422, "properties.value"),
        ("purchase", {"value": "lots"}, 422, "properties.value"),
        ("message_clicked", {}, 422, "properties.channel"),
        ("message_clicked", {"channel": "fax"}, 422, "properties.channel"),
        ("unsubscribed", {}, 422, "properties.channel"),
        ("purchase", {"value": 5.0, "event_id": 12}, 422, "properties.event_id"),
        ("purchase", {"value": 5.0, "event_id": "f" * 44}, 404, "properties.event_id"),
    ],
    ids=["no-value", "text-value", "no-channel", "bad-channel", "unsubscribed-no-channel",
         "numeric-id", "unknown-id"],
)
def test_a_malformed_outcome_names_the_field(
    srv: LiveServer, kind: str, props: dict, status: int, field: str
) -> None:
    r = post_event(srv, "c-bad", kind, **props)
    assert r.status_code == status, r.text
    assert r.json()["detail"][0]["field"] == field


def test_an_outcome_without_a_reward_definition_is_accepted(srv: LiveServer) -> None:
    r = srv.client.post("/decide", json={"customer_id": "c-bad"})
    eid, channel = r.json()["event_id"], r.json()["channel"]
    r = post_event(srv, "c-bad", "message_delivered", event_id=eid)
    assert r.status_code == 202, r.text
    assert "rewards" not in r.json()
    # a click on that channel joins that decision (the latest contact there): 0.2
    r = post_event(srv, "c-bad", "message_clicked", channel=channel)
    assert r.status_code == 202
    assert [(x["event_id"], x["reward"]) for x in r.json()["rewards"]] == [(eid, 0.2)]
