"""Integration: the Feast workspace (real Feast, SQLite online store under tmp_path) and
the decision path's FeatureSource reading it."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from pathlib import Path

import pandas as pd
import pytest

from features.errors import FeatureStoreUnavailable, WorkspaceError
from features.schema import ALL_FEATURES, DEFAULTS, GROUPS, TTL_SECONDS

pytestmark = [pytest.mark.integration,
              pytest.mark.filterwarnings("ignore:Stream feature views:RuntimeWarning")]


def _online_rows(repo: Path) -> int:
    with sqlite3.connect(repo / "data" / "online_store.db") as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 'maestro_customer_%'")]
        return sum(conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables)


def test_init_lays_out_an_applied_materialised_repo(repo: Path) -> None:
    from feast import FeatureStore

    assert (repo / "feature_store.yaml").exists() and (repo / "definitions.py").exists()
    frame = pd.read_parquet(repo / "data" / "customers.parquet")
    assert len(frame) == 200 and frame["customer_id"].is_unique
    assert (frame["customer_id"].iloc[0], frame["customer_id"].iloc[-1]) == ("c-000000", "c-000199")
    store = FeatureStore(repo_path=str(repo))
    views = {v.name for v in store.list_feature_views()} | {
        v.name for v in store.list_stream_feature_views()}
    assert views == set(GROUPS) | {"agent"}  # customer views + the agent roster
    services = {s.name for s in store.list_feature_services()}
    assert services >= {"policy_inputs_v1", "rules_inputs_v1"}
    assert {s.name for s in store.list_data_sources()} >= {f"{v}_push" for v in GROUPS
                                                         if v != "customer_profile"}
    service = store.get_feature_service("policy_inputs_v1")
    served = {f.name for p in service.feature_view_projections for f in p.features}
    assert served == set(ALL_FEATURES)
    with sqlite3.connect(repo / "data" / "online_store.db") as conn:
        for view, features in GROUPS.items():  # every view row of every customer materialised
            table = f"maestro_{view}"
            keys, names = conn.execute(
                f'SELECT COUNT(DISTINCT entity_key), COUNT(DISTINCT feature_name) FROM "{table}" '
                f"WHERE feature_name IN ({','.join('?' * len(features))})", list(features),
            ).fetchone()
            assert (keys, names) == (200, len(features)), view


def test_second_init_is_idempotent(workspace: Path, repo: Path, source) -> None:
    from features.workspace import init_feature_workspace

    before_rows = _online_rows(repo)
    before = source.get("c-000010")
    manifest = json.loads((repo / "data" / "maestro_manifest.json").read_text())
    summary = init_feature_workspace(workspace, customers=200, seed=11)
    assert not summary.generated and not summary.materialized
    assert json.loads((repo / "data" / "maestro_manifest.json").read_text()) == manifest
    assert len(pd.read_parquet(repo / "data" / "customers.parquet")) == 200
    assert _online_rows(repo) == before_rows
    assert source.get("c-000010") == before


def test_read_returns_every_feature_typed_and_equal_to_the_data(source, customers_frame) -> None:
    for cid in ("c-000000", "c-000057", "c-000199"):
        got = source.get(cid)
        assert got.known and got.customer_id == cid and not got.stale
        assert set(got.values) == set(ALL_FEATURES)
        row = customers_frame.loc[cid]
        for name, typ in ALL_FEATURES.items():
            assert type(got.values[name]) is typ, name
            expected = row[name].item() if hasattr(row[name], "item") else row[name]
            assert got.values[name] == pytest.approx(expected), name


def test_read_agrees_with_feasts_own_sdk(source) -> None:
    store = source.store
    sdk = store.get_online_features(
        features=store.get_feature_service("policy_inputs_v1"),
        entity_rows=[{"customer_id": "c-000123"}],
    ).to_dict()
    ours = source.get("c-000123").values
    assert {k: sdk[k][0] for k in ALL_FEATURES} == dict(ours)


def test_entity_key_matches_feast_serialisation() -> None:
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    from features.feast.row_format import entity_key_bytes

    for cid in ("c-000001", "x", "ñandú-é-客户"):
        key = EntityKey(join_keys=["customer_id"], entity_values=[Value(string_val=cid)])
        assert entity_key_bytes(cid) == serialize_entity_key(key, 3)


def test_unknown_customer_gets_documented_defaults(source) -> None:
    got = source.get("c-999999")
    assert not got.known
    assert dict(got.values) == dict(DEFAULTS)
    assert got.values["consent_email"] is False  # no record of consent: no consent


def test_values_past_their_ttl_are_flagged(repo: Path) -> None:
    from features.feast.source import FeastFeatureSource

    later = time.time() + 3 * 86400  # past 2-day views and the 30-minute session
    src = FeastFeatureSource(repo, clock=lambda: later, timeout=2.0)
    try:
        got = src.get("c-000005")
    finally:
        src.close()
    stale_views = {v for v, ttl in TTL_SECONDS.items() if ttl and ttl < 3 * 86400}
    expected = {f for v in stale_views for f in GROUPS[v]}
    assert got.stale == frozenset(expected)
    assert not got.stale & set(GROUPS["customer_consent"])  # consent never expires
    assert not got.stale & set(GROUPS["customer_profile"])  # 30-day TTL
    assert got.values["segment"] != DEFAULTS["segment"] or got.known  # values still served


def test_missing_store_raises_unavailable_quickly(repo: Path, tmp_path: Path) -> None:
    from features.feast.source import FeastFeatureSource

    copy = tmp_path / "feature_repo"
    shutil.copytree(repo, copy)
    src = FeastFeatureSource(copy, timeout=2.0)
    assert src.get("c-000001").known and src.ping()
    (copy / "data" / "online_store.db").unlink()
    started = time.perf_counter()
    with pytest.raises(FeatureStoreUnavailable, match="missing") as info:
        src.get("c-000001")
    assert time.perf_counter() - started < 0.5
    assert info.value.http_status == 503
    assert src.ping() is False


def test_locked_store_raises_unavailable_within_the_timeout(repo: Path, tmp_path: Path) -> None:
    from features.feast.source import FeastFeatureSource

    copy = tmp_path / "feature_repo"
    shutil.copytree(repo, copy)
    src = FeastFeatureSource(copy, timeout=0.05)
    db = copy / "data" / "online_store.db"
    locker = sqlite3.connect(db, timeout=1)
    locker.execute("PRAGMA locking_mode=EXCLUSIVE")
    locker.execute("BEGIN EXCLUSIVE")
    locker.execute('DELETE FROM "maestro_customer_session" WHERE 0')
    try:
        started = time.perf_counter()
        with pytest.raises(FeatureStoreUnavailable):
            src.get("c-000001")
        assert time.perf_counter() - started < 1.0
    finally:
        locker.rollback()
        locker.close()
    assert src.get("c-000001").known  # recovers once the lock is gone


def test_source_without_a_repo_fails_loudly(tmp_path: Path) -> None:
    from features.feast.source import FeastFeatureSource

    with pytest.raises(WorkspaceError, match="maestro init"):
        FeastFeatureSource(tmp_path / "nowhere")


def test_historical_retrieval_is_point_in_time_correct(repo: Path, customers_frame) -> None:
    from features.historical import training_features

    loaded = pd.read_parquet(repo / "data" / "customers.parquet")["event_timestamp"].iloc[0]
    entity = pd.DataFrame({
        "customer_id": ["c-000003", "c-000004", "c-000003", "c-nobody"],
        "event_timestamp": [loaded + pd.Timedelta(minutes=5), loaded + pd.Timedelta(minutes=5),
                            loaded - pd.Timedelta(days=1), loaded + pd.Timedelta(minutes=5)],
        "label": [1.0, 2.0, 3.0, 4.0],
    })
    out = training_features(repo, entity)
    assert list(out["label"]) == [1.0, 2.0, 3.0, 4.0]  # every row, in order
    for i, cid in ((0, "c-000003"), (1, "c-000004")):
        assert out.loc[i, "segment"] == customers_frame.loc[cid, "segment"]
        assert out.loc[i, "tenure_days"] == customers_frame.loc[cid, "tenure_days"]
        assert bool(out.loc[i, "consent_sms"]) == bool(customers_frame.loc[cid, "consent_sms"])
    assert out.loc[2, ["segment", "tenure_days"]].isna().all()  # before the data existed
    assert out.loc[3, ["segment", "tenure_days"]].isna().all()  # unknown customer
