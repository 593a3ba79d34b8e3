"""Identity stitching end to end: a real Feast workspace (SQLite online store) behind the
live uvicorn server; anonymous events, ``identify``, decisions by either id, erasure."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.support.live_servers import LiveServer, LiveServers, live_settings

pytestmark = pytest.mark.integration
CART = "cart_abandoned"
ANON, CID = "dev-anon-1", "c-000021"
PROFILE = f"anon:{ANON}"  # the unlinked anonymous id's own profile


@pytest.fixture(scope="module", params=["sqlite", "redis", "postgres"])
def srv(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    live_servers: LiveServers,
) -> Iterator[LiveServer]:
    """The live server with its contact and identity stores embedded (SQLite), on the
    session's real Redis (a database of its own, emptied first), or with the identity links
    in the shared-state PostgreSQL (a database of its own)."""
    from features.workspace import init_feature_workspace

    home = tmp_path_factory.mktemp("identity-home")
    init_feature_workspace(home, customers=40, seed=3)
    shared: dict[str, Any] = {}
    if request.param == "redis":
        import redis

        url = f"redis://127.0.0.1:{request.getfixturevalue('redis_server')}/12"
        redis.Redis.from_url(url).flushdb()
        shared = {"contact_store": "redis", "contact_redis_url": url}
    elif request.param == "postgres":
        shared = {"state_url": request.getfixturevalue("postgres").database()}
    settings = live_settings(
        home, feature_source="feast", time_budget_ms=2000.0, admission_queue_ms=10_000.0,
        **shared,
    )
    server = live_servers.start(settings, None)
    kind = type(server.service.identity.store).__name__
    assert kind == {"sqlite": "SQLiteIdentityStore", "redis": "RedisIdentityStore",
                    "postgres": "PostgresIdentityStore"}[request.param]
    yield server
    server.stop()


def _logged(srv: LiveServer) -> pd.DataFrame:
    from training.logs.schema import DECISION_SCHEMA

    srv.service.log.roll()
    return pd.read_parquet(srv.home / "logs" / "decisions", schema=DECISION_SCHEMA)


def _features(srv: LiveServer, event_id: str) -> dict[str, Any]:
    frame = _logged(srv)
    return json.loads(frame[frame["event_id"] == event_id].iloc[0]["customer_features"])


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _event(srv: LiveServer, body: dict[str, Any]) -> dict[str, Any]:
    r = srv.client.post("/events", json=body)
    assert r.status_code == 202, r.text
    return dict(r.json())


def test_anonymous_history_is_merged_on_identify_and_erased_with_the_customer(
    srv: LiveServer,
) -> None:
    from features.feast.source import FeastFeatureSource

    c = srv.client
    before = c.post("/decide", json={"customer_id": CID, "decision_point": CART}).json()
    base = _features(srv, before["event_id"])
    assert base["consent_sms"] is False or base["consent_sms"] == 0, "pick a non-consenting id"
    # before any event: the anonymous visitor is decided for from the defaults
    first = c.post("/decide", json={"anonymous_id": ANON, "decision_point": CART})
    assert first.status_code == 200, first.text
    assert first.json()["customer_known"] is False and first.json()["degraded"] is False
    now = time.time()
    for i, page in enumerate(("home", "cart")):
        _event(srv, {"anonymous_id": ANON, "type": "page_view", "properties": {"page": page},
                     "timestamp": _iso(now - 60 + 10 * i)})
    _event(srv, {"anonymous_id": ANON, "type": "cart_updated",
                 "properties": {"cart_value": 321.5}, "timestamp": _iso(now - 30)})
    _event(srv, {"anonymous_id": ANON, "type": "consent_changed",
                 "properties": {"channel": "sms", "granted": True}, "timestamp": _iso(now - 20)})
    _event(srv, {"anonymous_id": ANON, "type": "message_sent",
                 "properties": {"channel": "email", "action_id": "outside"},
                 "timestamp": _iso(now - 10)})
    anon = c.post("/decide", json={"anonymous_id": ANON, "decision_point": CART}).json()
    frame = _logged(srv)
    row = frame[frame["event_id"] == anon["event_id"]].iloc[0]
    assert row["customer_id"] == PROFILE and row["anonymous_id"] == ANON
    seen = _features(srv, anon["event_id"])
    assert anon["customer_known"] is True and seen["cart_value"] == pytest.approx(321.5, abs=1e-9)
    linked = _event(srv, {"customer_id": CID, "type": "identify",
                          "properties": {"anonymous_id": ANON}})
    assert linked["linked_to"] == CID and linked["replayed_events"] == 4
    assert linked["moved_contacts"] >= 1  # the outside contact, and any decision committed
    # the customer's next decision sees the anonymous session, consent and contacts
    after = c.post("/decide", json={"customer_id": CID, "decision_point": CART}).json()
    merged = _features(srv, after["event_id"])
    assert merged["cart_value"] == pytest.approx(321.5, abs=1e-9)
    assert merged["last_page"] == "cart" and int(merged["session_pages"]) >= 2
    assert bool(merged["consent_sms"]) is True
    assert "no_consent:sms" not in {x["reason"] for x in after["excluded"]}
    store = srv.service.contacts.store
    history = store.read(CID, 0.0, (), time.time()).history
    assert ("email", "outside") in [(h.channel, h.action_id) for h in history]
    assert store.read(PROFILE, 0.0, (), time.time()).history == ()
    # a decision by the anonymous id now acts on the customer; the log keeps both ids
    again = c.post("/decide", json={"anonymous_id": ANON, "decision_point": CART}).json()
    frame = _logged(srv)
    row = frame[frame["event_id"] == again["event_id"]].iloc[0]
    assert row["customer_id"] == CID and row["anonymous_id"] == ANON
    assert frame[frame["event_id"] == after["event_id"]].iloc[0]["anonymous_id"] is None
    # erasure of the customer leaves no row under either id
    r = c.delete(f"/customers/{CID}")
    assert r.status_code == 200, r.text
    erased = r.json()["erased"]
    assert erased["identity_links"] == 1 and erased["decisions"] >= 4
    frame = _logged(srv)
    assert not frame["customer_id"].isin([CID, PROFILE]).any()
    assert not (frame["anonymous_id"] == ANON).any()
    source = FeastFeatureSource(srv.home / "feature_repo")
    for who in (CID, PROFILE):
        assert source.get(who).known is False, who
        assert store.read(who, 0.0, (), time.time()).history == ()
    assert srv.service.identity.store.resolve(ANON) is None
    assert srv.service.identity.store.anonymous_ids(CID) == []


def test_identity_requests_are_checked(srv: LiveServer) -> None:
    c = srv.client
    r = c.post("/decide", json={"decision_point": CART})
    assert r.status_code == 422 and "anonymous_id" in r.text
    assert [d["field"] for d in r.json()["detail"]] == ["customer_id"]
    r = c.post("/events", json={"anonymous_id": "a", "customer_id": "b", "type": "page_view",
                                "properties": {"page": "x"}})
    assert r.status_code == 422 and "not both" in r.text
    r = c.post("/events", json={"anonymous_id": "a", "type": "identify",
                                "properties": {"anonymous_id": "b"}})
    assert r.status_code == 422 and "identify needs customer_id" in r.text
    assert [d["field"] for d in r.json()["detail"]] == ["customer_id"]
    r = c.post("/events", json={"customer_id": "c-000001", "type": "identify",
                                "properties": {"anonymous_id": ""}})
    assert r.status_code == 422 and "properties.anonymous_id" in r.text
    # a second customer cannot take over an anonymous id already linked
    _event(srv, {"customer_id": "c-000002", "type": "identify",
                 "properties": {"anonymous_id": "dev-x"}})
    other = _event(srv, {"customer_id": "c-000003", "type": "identify",
                         "properties": {"anonymous_id": "dev-x"}})
    assert other["linked_to"] == "c-000002" and other["replayed_events"] == 0


def test_an_anonymous_id_never_reads_a_customer_profile(srv: LiveServer) -> None:
    """An anonymous id spelled like a customer id is its own (empty) profile."""
    c = srv.client
    known = c.post("/decide", json={"customer_id": "c-000005", "decision_point": CART}).json()
    guess = c.post("/decide", json={"anonymous_id": "c-000005", "decision_point": CART}).json()
    assert known["customer_known"] is True and guess["customer_known"] is False


def test_old_log_parts_read_with_a_null_anonymous_id(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from training.logs.schema import DECISION_SCHEMA

    old = pa.schema([f for f in DECISION_SCHEMA if f.name != "anonymous_id"])
    table = pa.Table.from_pylist([{"event_id": "e1", "customer_id": "c1"}], schema=old)
    pq.write_table(table, tmp_path / "part-0.parquet")
    frame = pd.read_parquet(tmp_path, schema=DECISION_SCHEMA)
    assert list(frame["customer_id"]) == ["c1"] and frame["anonymous_id"].isna().all()
