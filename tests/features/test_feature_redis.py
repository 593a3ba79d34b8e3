"""Integration: the same workspace with Redis as the online store (a real redis-server the
fixture starts on 127.0.0.1), switched by configuration only."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import yaml

from features.errors import FeatureStoreUnavailable
from features.schema import ALL_FEATURES, DEFAULTS

pytestmark = [pytest.mark.integration,
              pytest.mark.filterwarnings("ignore:Stream feature views:RuntimeWarning")]


@pytest.fixture(scope="module")
def redis_source(redis_workspace: Path):
    from features.feast.source import open_feature_source

    src = open_feature_source(redis_workspace, timeout=2.0)
    yield src
    src.close()


def test_configuration_switches_the_online_store(redis_workspace: Path, redis_server: int,
                                                 redis_source) -> None:
    from features.feast.redis_backend import RedisBackend

    config = yaml.safe_load((redis_workspace / "feature_repo" / "feature_store.yaml").read_text())
    assert config["online_store"] == {"type": "redis",
                                      "connection_string": f"127.0.0.1:{redis_server}"}
    assert isinstance(redis_source.backend, RedisBackend)
    assert redis_source.ping()


def test_redis_serves_what_sqlite_serves(redis_source, source) -> None:
    for cid in ("c-000100", "c-000101", "c-000150"):
        got = redis_source.get(cid)
        assert got.known and not got.stale
        assert dict(got.values) == dict(source.get(cid).values)
        assert all(type(got.values[n]) is t for n, t in ALL_FEATURES.items())
    unknown = redis_source.get("c-555555")
    assert not unknown.known and dict(unknown.values) == dict(DEFAULTS)


def test_redis_read_agrees_with_feasts_sdk(redis_source) -> None:
    store = redis_source.store
    sdk = store.get_online_features(features=store.get_feature_service("policy_inputs_v1"),
                                    entity_rows=[{"customer_id": "c-000102"}]).to_dict()
    assert {k: sdk[k][0] for k in ALL_FEATURES} == dict(redis_source.get("c-000102").values)


def test_redis_events_consent_and_erasure(redis_workspace: Path, redis_source) -> None:
    from features.erasure import erase_customer
    from features.event_writer import EventWriter
    from features.feast.source import open_feature_source

    other = open_feature_source(redis_workspace, timeout=2.0)
    writer = EventWriter(redis_source, flush_interval=0.05)
    try:
        cid = "c-000110"
        writer.ingest({"customer_id": cid, "type": "consent_changed",
                       "properties": {"channel": "email", "granted": False}})
        assert redis_source.get(cid).values["consent_email"] is False
        assert other.get(cid).values["consent_email"] is False  # written through to Redis
        writer.ingest({"customer_id": cid, "type": "consent_changed",
                       "properties": {"channel": "email", "granted": True}})
        assert other.get(cid).values["consent_email"] is True  # same second: still newer
        writer.ingest({"customer_id": cid, "type": "page_view", "properties": {"page": "faq"}})
        assert redis_source.get(cid).values["last_page"] == "faq"
        deadline = time.monotonic() + 2
        while other.get(cid).values["last_page"] != "faq":
            assert time.monotonic() < deadline, "event never reached redis"
            time.sleep(0.005)
        counts = erase_customer(redis_source, cid, writer)
        assert counts.online_values >= 65 and counts.offline_rows == 1
        assert not other.get(cid).known
    finally:
        writer.close()
        other.close()


def test_redis_down_raises_unavailable_quickly(redis_workspace: Path) -> None:
    from features.feast.redis_backend import RedisBackend
    from features.feast.source import FeastFeatureSource

    src = FeastFeatureSource(redis_workspace / "feature_repo", timeout=2.0)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    src.backend = RedisBackend(f"127.0.0.1:{dead}", "maestro", src.views, timeout=0.05)
    started = time.perf_counter()
    with pytest.raises(FeatureStoreUnavailable, match="redis"):
        src.get("c-000001")
    assert time.perf_counter() - started < 0.5
    assert src.ping() is False
