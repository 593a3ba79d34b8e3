"""``maestro materialize`` through the bulk writers (:mod:`features.feast.view_writer`)
writes what Feast's own ``write_to_online_store`` writes: the same declared source (the
scale benchmark's 40 features of every type) is materialised both ways, twice (a second
batch with newer and older rows: incremental, point-in-time), in chunks smaller than the
batch, and every value and event time is read back through Feast's public
``get_online_features`` — identical; on SQLite the online tables are equal row for row."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.bench_feature_load import declaration, export

NOW = pd.Timestamp("2026-06-01T00:00:00Z").timestamp()
N = 60


#: the Redis database this module's workspaces use
BULK_DB = 7


def _home(path: Path, online: str) -> Path:
    from features.apply import apply_workspace
    from features.workspace import init_feature_workspace

    init_feature_workspace(path, customers=5, seed=1, online_store=online)
    (path / "features.yaml").write_text(declaration())
    apply_workspace(path)
    return path


def _push_newer(home: Path) -> None:
    """A value for c-000000 newer than anything staged, written by Feast (as an event
    would be): Feast's Redis writer keeps it over an older staged row, SQLite's does not."""
    from feast import FeatureStore

    staged = pd.read_parquet(home / "feature_repo" / "data" / "staged" / "bench.parquet")
    row = staged[staged["customer_id"] == "c-000000"].tail(1).reset_index(drop=True)
    row["event_timestamp"] = pd.Timestamp("2026-05-01", tz="UTC")
    row["f00"] = 12345.0
    FeatureStore(repo_path=str(home / "feature_repo")).write_to_online_store("customer_bench", row)


def _run(home: Path, bulk: bool) -> list[tuple[int, int]]:
    """Two loads (the second: new values for half the customers, some of them older than
    the first's, and a newer value pushed for one of them) each followed by a
    materialisation; what each run moved."""
    from features.declared import load_declaration
    from features.materialize import materialize_sources
    from features.staging import load_source

    decl = load_declaration(home / "features.yaml", home)
    moved = []
    for step, (n, seed) in enumerate([(N, 1), (N // 2, 2)]):
        export(home / "exports" / "bench.parquet", n, seed=seed)
        report = load_source(home, decl, "bench", None, clock=lambda s=step: NOW + s)
        assert report.staged == n
        if step:
            _push_newer(home)
        (count,) = materialize_sources(home, decl, bulk=bulk)
        moved.append((count.new_rows, count.customers))
    return moved


def _online(home: Path) -> dict:
    """Every customer's custom features and event times, through Feast's public SDK."""
    from feast import FeatureStore

    store = FeatureStore(repo_path=str(home / "feature_repo"))
    rows = [{"customer_id": f"c-{i:06d}"} for i in range(N + 3)]  # 3 never loaded
    return store.get_online_features(
        features=store.get_feature_service("bench_features"), entity_rows=rows
    ).to_dict(include_event_timestamps=True)


def _table(home: Path) -> list[tuple]:
    conn = sqlite3.connect(home / "feature_repo" / "data" / "online_store.db")
    try:
        name = next(
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            if r[0].endswith("_customer_bench")
        )
        return conn.execute(f'SELECT * FROM "{name}" ORDER BY entity_key, feature_name').fetchall()
    finally:
        conn.close()


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    import features.materialize

    monkeypatch.setattr(features.materialize, "CHUNK_ROWS", 7)


def _check(feast: dict, bulk: dict, moved: list) -> None:
    assert moved == [(N, N), (N // 2, N // 2)]
    assert feast == bulk
    assert len(feast["f00"]) == N + 3 and feast["f00"][-1] is None  # unknown: no row
    floats = [v for v in bulk["f07"] if v is not None]
    assert len(floats) == N and len({round(v, 3) for v in floats}) > N // 2


def test_sqlite_bulk_materialize_equals_feasts(tmp_path: Path, small_chunks: None) -> None:
    from feast import FeatureStore

    from features.feast.view_writer import SqliteViewWriter, bulk_view_writer

    base = _home(tmp_path / "base", "sqlite")
    feast_home = Path(shutil.copytree(base, tmp_path / "feast"))
    bulk_home = Path(shutil.copytree(base, tmp_path / "bulk"))
    writer = bulk_view_writer(FeatureStore(repo_path=str(bulk_home / "feature_repo")))
    assert isinstance(writer, SqliteViewWriter)
    writer.close()
    moved = _run(feast_home, bulk=False)
    assert _run(bulk_home, bulk=True) == moved
    _check(_online(feast_home), _online(bulk_home), moved)
    feast_rows, bulk_rows = _table(feast_home), _table(bulk_home)
    assert len(feast_rows) == N * 40 and feast_rows == bulk_rows
    assert _online(bulk_home)["f00"][0] != 12345.0  # SQLite: Feast overwrites, so do we


def test_redis_bulk_materialize_equals_feasts(
    tmp_path: Path, redis_server: int, small_chunks: None
) -> None:
    from feast import FeatureStore

    from features.feast.redis_backend import redis_client
    from features.feast.view_writer import RedisViewWriter, bulk_view_writer

    # a database of its own on the session's redis-server: the flushes below must not wipe
    # what other tests' workspaces keep in database 0
    base = _home(tmp_path / "base", f"redis://127.0.0.1:{redis_server}/{BULK_DB}")
    client = redis_client(f"127.0.0.1:{redis_server},db={BULK_DB}", 5.0)
    snapshots = []
    for bulk in (False, True):
        client.flushdb()
        home = Path(shutil.copytree(base, tmp_path / f"run-{bulk}"))
        if bulk:
            writer = bulk_view_writer(FeatureStore(repo_path=str(home / "feature_repo")))
            assert isinstance(writer, RedisViewWriter)
            writer.close()
        snapshots.append((_run(home, bulk=bulk), _online(home)))
    client.close()
    (moved, feast), (bulk_moved, bulk) = snapshots
    assert bulk_moved == moved
    _check(feast, bulk, moved)
    assert bulk["f00"][0] == 12345.0  # the newer pushed value stays, as Feast keeps it


@pytest.mark.parametrize(
    ("typ", "values"),
    [
        (float, [0.0, -0.0, 1.5, -123.456, 1e300, 5e-324, float("inf"), 0.1 + 0.2, None]),
        (int, [0, 1, 127, 128, 300, -1, -(2**63), 2**63 - 1, 16_384, None]),
        (bool, [True, False, None]),
        (str, ["", "gold", "é漢字", "x" * 127, "y" * 128, "z" * 20_000, None]),
    ],
    ids=["float", "int", "bool", "str"],
)
def test_encoded_values_equal_feasts_protos(typ: type, values: list) -> None:
    from feast.infra.online_stores.helpers import extract_text_and_num
    from feast.protos.feast.types.Value_pb2 import Value

    from features.feast.view_writer import encode_values

    oneof = {str: "string_val", int: "int64_val", float: "double_val", bool: "bool_val"}[typ]
    protos = [Value() if v is None else Value(**{oneof: v}) for v in values]
    blobs, texts = encode_values(typ, values)
    assert blobs == [p.SerializeToString() for p in protos]
    assert texts == [extract_text_and_num(p, False)[0] for p in protos]
