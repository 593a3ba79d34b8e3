"""Sources declared in ``features.yaml``, on real Feast (SQLite online store; a Redis
variant on the session's redis-server): each source kind loads; seeded bad rows come out
counted and reported exactly, all of them in the reject file; an incremental
materialisation moves only the customers with new rows; a historical read is
point-in-time correct; erasure removes staged rows."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from custom_features import (
    CUSTOM_FEATURES,
    SOURCES,
    billing,
    custom_declaration,
    maestro,
    write_billing,
    write_crm,
    write_declaration,
)

NOW = pd.Timestamp("2026-06-01T00:00:00Z").timestamp()  # the loads' clock

#: (CSV row, the reasons it must be rejected for; "" = staged)
SEEDED = [
    ("c-000001,2026-01-01T00:00:00Z,720,Y", ""),
    ("c-000002,2026-01-01T00:00:00Z,650,N", ""),
    ("c-000003,2026-01-01T00:00:00Z,abc,Y", "wrong_type:credit_score"),
    ("c-000004,2026-01-01T00:00:00Z,900,Y", "out_of_range:credit_score"),
    ("c-000005,2099-01-01T00:00:00Z,700,N", "future_timestamp"),
    ("c-999999,2026-01-01T00:00:00Z,700,N", "unknown_customer"),
    ("c-000006,2026-01-01T00:00:00Z,700,maybe", "unmapped_value:has_mortgage"),
    ("c-000007,2026-01-01T00:00:00Z,700,N", "duplicate_key"),
    ("c-000007,2026-01-01T00:00:00Z,710,N", "duplicate_key"),
    ("c-000008,yesterday,700,N", "bad_timestamp"),
    (",2026-01-01T00:00:00Z,700,N", "missing_key"),
    ("c-000009,2026-01-01T00:00:00Z,,Y", "wrong_type:credit_score"),
    ("c-000010,2099-01-01T00:00:00Z,100,Y", "future_timestamp;out_of_range:credit_score"),
]
REPORT = [
    "source crm: 13 rows read, 2 staged, 11 rejected",
    "  bad_timestamp: 1",
    "  duplicate_key: 2",
    "  future_timestamp: 2",
    "  missing_key: 1",
    "  out_of_range:credit_score: 2",
    "  unknown_customer: 1",
    "  unmapped_value:has_mortgage: 1",
    "  wrong_type:credit_score: 2",
    "  sample of rejected rows (first 5):",
    "    line 4: wrong_type:credit_score — crm_id=c-000003, modified=2026-01-01T00:00:00Z, "
    "fico=abc, mtg=Y",
    "    line 5: out_of_range:credit_score — crm_id=c-000004, modified=2026-01-01T00:00:00Z, "
    "fico=900, mtg=Y",
    "    line 6: future_timestamp — crm_id=c-000005, modified=2099-01-01T00:00:00Z, fico=700, "
    "mtg=N",
    "    line 7: unknown_customer — crm_id=c-999999, modified=2026-01-01T00:00:00Z, fico=700, "
    "mtg=N",
    "    line 8: unmapped_value:has_mortgage — crm_id=c-000006, modified=2026-01-01T00:00:00Z, "
    "fico=700, mtg=maybe",
]


def _make_home(home: Path, online_store: str | None = None) -> Path:
    from features.apply import apply_workspace
    from features.workspace import init_feature_workspace

    init_feature_workspace(home, customers=20, seed=3, online_store=online_store)
    write_crm(home, [SEEDED[0][0]])
    write_billing(home, billing(["c-000001"], [1], ["basic"]))
    write_declaration(home, custom_declaration())
    apply_workspace(home)
    return home


@pytest.fixture(scope="module")
def base_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace (20 synthetic customers) with the custom views applied, nothing loaded."""
    return _make_home(tmp_path_factory.mktemp("sources-base"))


@pytest.fixture
def home(base_home: Path, tmp_path: Path) -> Path:
    """A fresh copy of the base workspace for one test."""
    return Path(shutil.copytree(base_home, tmp_path / "home"))


def _decl(home: Path):
    from features.declared import workspace_declaration

    return workspace_declaration(home)


_LOADS = [0]


def _load(home: Path, source: str, reject: Path | None = None):
    """One load, its clock a second after the previous load's (from :data:`NOW`)."""
    from features.staging import load_source

    _LOADS[0] += 1
    return load_source(home, _decl(home), source, reject, clock=lambda: NOW + _LOADS[0])


def _values(home: Path, customer: str) -> dict:
    from features.feast.source import FeastFeatureSource

    source = FeastFeatureSource(home / "feature_repo", timeout=2.0)
    try:
        return dict(source.get(customer).values)
    finally:
        source.close()


def test_seeded_bad_rows_are_counted_and_reported_exactly(home: Path, tmp_path: Path) -> None:
    write_crm(home, [row for row, _ in SEEDED])
    reject = tmp_path / "rejects.csv"
    report = _load(home, "crm", reject)
    assert report.lines()[: len(REPORT)] == REPORT
    assert report.lines()[-1] == f"  all rejected rows: {reject}"
    rejected = pd.read_csv(reject, dtype=str, keep_default_na=False)
    expected = [(str(i + 2), why) for i, (_, why) in enumerate(SEEDED) if why]
    assert list(zip(rejected["line"], rejected["reasons"], strict=True)) == expected
    assert list(rejected.columns) == ["line", "reasons", "crm_id", "modified", "fico", "mtg"]
    staged = pd.read_parquet(home / "feature_repo" / "data" / "staged" / "crm.parquet")
    assert sorted(
        zip(staged["customer_id"], staged["credit_score"], staged["has_mortgage"], strict=True)
    ) == [("c-000001", 720, True), ("c-000002", 650, False)]


def test_a_parquet_source_loads_and_reports_its_bad_rows(home: Path) -> None:
    write_billing(
        home,
        billing(
            ["c-000001", "c-000002", "c-000003", "c-424242"],
            ["3", "-1", "many", "2"],
            ["gold", "basic", "gold", "gold"],
        ),
    )
    report = _load(home, "billing")
    assert (report.rows, report.staged, report.rejected) == (4, 1, 3)
    assert report.reasons == {
        "out_of_range:products_held": 1,
        "wrong_type:products_held": 1,
        "unknown_customer": 1,
    }
    assert [row["line"] for row in report.sample] == [2, 3, 4]  # Parquet: row numbers


def test_maestro_load_and_materialize_on_the_command_line(home: Path, tmp_path: Path) -> None:
    write_crm(home, [row for row, _ in SEEDED[:4]])
    load = maestro(home, "load", "crm", "--reject-file", str(tmp_path / "r.csv"))
    assert load.returncode == 0, load.stderr
    assert load.stdout.splitlines()[0] == "source crm: 4 rows read, 2 staged, 2 rejected"
    assert len(pd.read_csv(tmp_path / "r.csv")) == 2
    done = maestro(home, "materialize")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "source crm: 2 new staged rows, 2 customers written to the online store",
        "source billing: 0 new staged rows, 0 customers written to the online store",
    ]
    unknown = maestro(home, "load", "erp")
    assert unknown.returncode == 2
    assert unknown.stderr.splitlines() == [
        "maestro: error: features.yaml: no source 'erp' (sources: crm, billing)"
    ]


def test_incremental_materialize_moves_only_changed_customers(home: Path) -> None:
    from feast import FeatureStore

    from features.materialize import materialize_sources

    write_crm(
        home,
        [
            "c-000001,2026-01-01T00:00:00Z,700,Y",
            "c-000002,2026-01-01T00:00:00Z,600,N",
            "c-000003,2026-01-01T00:00:00Z,500,N",
        ],
    )
    assert _load(home, "crm").staged == 3
    first = materialize_sources(home, _decl(home))
    assert [(c.source, c.new_rows, c.customers) for c in first] == [
        ("crm", 3, 3),
        ("billing", 0, 0),
    ]
    assert [c.new_rows for c in materialize_sources(home, _decl(home))] == [0, 0]
    # a mark only a re-materialisation of c-000003 would overwrite
    store = FeatureStore(repo_path=str(home / "feature_repo"))
    store.write_to_online_store(
        "customer_credit",
        pd.DataFrame(
            {
                "customer_id": ["c-000003"],
                "event_timestamp": [pd.Timestamp("2026-01-01", tz="UTC")],
                "loaded_at": [pd.Timestamp("2026-01-01", tz="UTC")],
                "credit_score": [111],
                "has_mortgage": [False],
            }
        ),
    )
    # batch 2: c-000001 newer, c-000002 older than what is staged (must not win)
    write_crm(home, ["c-000001,2026-02-01T00:00:00Z,750,Y", "c-000002,2025-12-01T00:00:00Z,400,Y"])
    assert _load(home, "crm").staged == 2
    second = materialize_sources(home, _decl(home))
    assert (second[0].new_rows, second[0].customers) == (2, 2)
    assert _values(home, "c-000001")["credit_score"] == 750
    assert (
        _values(home, "c-000002")["credit_score"],
        _values(home, "c-000002")["has_mortgage"],
    ) == (600, False)
    assert _values(home, "c-000003")["credit_score"] == 111  # not moved again
    assert _values(home, "c-000004")["credit_score"] == 0  # never loaded: the default


def test_historical_read_is_point_in_time_correct(home: Path) -> None:
    from features.historical import training_features

    write_crm(home, ["c-000001,2026-01-01T00:00:00Z,600,N"])
    _load(home, "crm")
    write_crm(home, ["c-000001,2026-03-01T00:00:00Z,700,Y"])
    _load(home, "crm")
    times = ["2025-12-31", "2026-01-15", "2026-02-15", "2026-03-02"]
    entity = pd.DataFrame(
        {
            "customer_id": ["c-000001"] * 4,
            "event_timestamp": pd.to_datetime([f"{t}T00:00:00Z" for t in times], utc=True),
        }
    )
    out = training_features(home / "feature_repo", entity, service="crm_features")
    assert pd.isna(out["credit_score"].iloc[0])  # nothing known yet: no leak from the future
    assert out["credit_score"].iloc[1] == 600 and not out["has_mortgage"].iloc[1]
    assert pd.isna(out["credit_score"].iloc[2])  # the January row is past the view's 30d TTL
    assert out["credit_score"].iloc[3] == 700 and out["has_mortgage"].iloc[3]


def test_erasure_removes_staged_rows(home: Path) -> None:
    from features.erasure import WorkspaceFeatureEraser
    from features.materialize import materialize_sources

    write_crm(home, ["c-000001,2026-01-01T00:00:00Z,700,Y", "c-000002,2026-01-01T00:00:00Z,600,N"])
    _load(home, "crm")
    materialize_sources(home, _decl(home))
    counts = WorkspaceFeatureEraser(home / "feature_repo").erase("c-000001")
    assert counts["offline_rows"] == 2  # the synthetic row and the staged crm row
    staged = pd.read_parquet(home / "feature_repo" / "data" / "staged" / "crm.parquet")
    assert list(staged["customer_id"]) == ["c-000002"]
    assert _values(home, "c-000001")["credit_score"] == 0


def test_sources_load_and_materialize_into_redis(redis_server: int, tmp_path: Path) -> None:
    from features.materialize import materialize_sources

    home = _make_home(tmp_path / "redis-home", online_store=f"redis://127.0.0.1:{redis_server}")
    write_crm(home, ["c-000001,2026-01-01T00:00:00Z,710,Y"])
    write_billing(home, billing(["c-000001", "c-000002"], [2, 5], ["gold", "basic"]))
    assert _load(home, "crm").staged == 1 and _load(home, "billing").staged == 2
    counts = materialize_sources(home, _decl(home))
    assert [(c.new_rows, c.customers) for c in counts] == [(1, 1), (2, 2)]
    one, two = _values(home, "c-000001"), _values(home, "c-000002")
    assert (one["credit_score"], one["has_mortgage"], one["products_held"]) == (710, True, 2)
    assert (two["credit_score"], two["product_tier"], two["products_held"]) == (0, "basic", 5)
    assert [c.new_rows for c in materialize_sources(home, _decl(home))] == [0, 0]


POSTGRES_SOURCE = """\
  ledger:
    kind: postgres
    dsn: env:MAESTRO_TEST_LEDGER_DSN
    table: finance.ledger
    entity_key: customer_ref
    event_time: booked_at
    columns:
      balance: {min: 0}
      in_arrears: {column: arrears_flag, values: {"Y": true, "N": false}}
"""


def test_a_postgres_table_loads_through_the_same_checks(
    postgres_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    from features.apply import apply_workspace
    from features.materialize import materialize_sources

    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS finance")
        conn.execute("DROP TABLE IF EXISTS finance.ledger")
        conn.execute(
            "CREATE TABLE finance.ledger (customer_ref text, booked_at timestamptz, "
            "balance numeric, arrears_flag text)"
        )
        conn.execute(
            "INSERT INTO finance.ledger VALUES "
            "('c-000001', '2026-01-01 00:00+00', 120.50, 'N'), "
            "('c-000002', '2026-01-01 00:00+00', -5, 'N'), "
            "('c-000003', '2099-01-01 00:00+00', 10, 'Y'), "
            "('c-777777', '2026-01-01 00:00+00', 10, 'Y'), "
            "('c-000004', '2026-01-01 00:00+00', 80, 'Y')"
        )
    monkeypatch.setenv("MAESTRO_TEST_LEDGER_DSN", postgres_dsn)
    # a workspace of its own: Feast's registry records the online tables' absolute path,
    # so re-applying in a copy of the shared base would drop the base's tables
    home = _make_home(tmp_path / "home")
    text = custom_declaration(
        views="  customer_credit: {ttl: 30d, source: crm}\n"
        "  customer_products: {ttl: 30d, source: billing}\n"
        "  customer_ledger: {ttl: 30d, source: ledger}\n",
        features=CUSTOM_FEATURES + "  - {name: balance, type: float, default: 0.0, view: "
        "customer_ledger}\n  - {name: in_arrears, type: bool, default: false, view: "
        "customer_ledger}\n",
        sources=SOURCES + POSTGRES_SOURCE,
    )
    write_declaration(home, text)
    apply_workspace(home)
    report = _load(home, "ledger")
    assert (report.rows, report.staged, report.rejected) == (5, 2, 3)
    assert report.reasons == {
        "out_of_range:balance": 1,
        "future_timestamp": 1,
        "unknown_customer": 1,
    }
    counts = {c.source: c.customers for c in materialize_sources(home, _decl(home))}
    assert counts["ledger"] == 2
    one, four = _values(home, "c-000001"), _values(home, "c-000004")
    assert one["balance"] == pytest.approx(120.5, abs=1e-9) and one["in_arrears"] is False
    assert four["balance"] == pytest.approx(80.0, abs=1e-9) and four["in_arrears"] is True


def test_materialize_every_runs_on_a_schedule_until_stopped(home: Path) -> None:
    import signal
    import time

    from custom_features import ROOT

    write_crm(home, ["c-000001,2026-01-01T00:00:00Z,700,Y"])
    env = {**os.environ, "MAESTRO_HOME": str(home), "PYTHONPATH": str(ROOT), "FEAST_USAGE": "False"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "materialize", "--every", "1s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("source crm: 0 new staged rows")
        assert _load(home, "crm").staged == 1  # staged while the schedule runs
        deadline = time.monotonic() + 120
        moved = ""
        while time.monotonic() < deadline and not moved.startswith("source crm: 1 new"):
            moved = proc.stdout.readline()
            if not moved:  # the schedule ended: say why
                pytest.fail(f"materialize --every exited: {proc.communicate(timeout=60)[1]}")
        assert moved == "source crm: 1 new staged rows, 1 customers written to the online store\n"
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert _values(home, "c-000001")["credit_score"] == 700
