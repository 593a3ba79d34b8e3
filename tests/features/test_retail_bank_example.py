"""``maestro init --example retail-bank``: the four exports and their ``features.yaml``
load with exactly the bad rows seeded in them (per source and reason), the same seed
writes the same bytes, and after ``materialize`` a custom feature from the CRM export
is in a decision's logged context. An unknown example is one line and exit 2."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from custom_features import maestro
from live_servers import serve_in_thread

pytestmark = pytest.mark.integration

#: what each load must reject, written out here so a change to the generator shows
EXPECTED = {
    "crm": {"wrong_type:products_held": 1, "duplicate_key": 2},
    "ticketing": {"unknown_customer": 1, "future_timestamp": 1},
    "billing": {"wrong_type:amount_due": 1, "unknown_customer": 1},
    "web": {"future_timestamp": 1, "duplicate_key": 2, "wrong_type:web_page_views": 1},
}


def _ok(home: Path, *args: str) -> str:
    done = maestro(home, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _reasons(report: str) -> dict[str, int]:
    """``  reason: count`` lines of a load report (before the sample)."""
    out = {}
    for line in report.splitlines()[1:]:
        if line.startswith("  sample") or line.startswith("  all rejected"):
            break
        reason, count = line.strip().rsplit(": ", 1)
        out[reason] = int(count)
    return out


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    home = tmp_path_factory.mktemp("retail-bank")
    out = _ok(home, "init", "--example", "retail-bank", "--customers", "30", "--seed", "5")
    reports = {}
    _ok(home, "apply")
    for source in EXPECTED:  # the CRM (the customer master) first
        reports[source] = _ok(
            home, "load", source, "--reject-file", str(home / f"{source}.rej.csv")
        )
    materialized = _ok(home, "materialize")
    yield {"home": home, "init": out, "reports": reports, "materialized": materialized}


def test_init_writes_the_exports_and_the_declaration(bank: dict) -> None:
    home = bank["home"]
    assert bank["init"].startswith("example retail-bank: 4 source exports")
    names = sorted(p.name for p in (home / "exports").iterdir())
    assert names == [
        "billing_invoices.csv",
        "crm_customers.csv",
        "ticketing_complaints.csv",
        "web_sessions.csv",
    ]
    crm = list(csv.DictReader((home / "exports" / "crm_customers.csv").open()))
    assert {r["MarketingOptIn"] for r in crm} == {"Y", "N", ""}
    assert len({r["PreferredLanguage"] for r in crm}) > len(
        {r["PreferredLanguage"].lower() for r in crm}
    )
    assert "products_held" in (home / "features.yaml").read_text()


@pytest.mark.parametrize("source", list(EXPECTED))
def test_load_rejects_exactly_the_seeded_bad_rows(bank: dict, source: str) -> None:
    report = bank["reports"][source]
    assert _reasons(report) == EXPECTED[source], report
    head = report.splitlines()[0]
    rows, staged, rejected = (int(w) for w in head.replace(",", "").split() if w.isdigit())
    assert rejected == sum(EXPECTED[source].values()) and staged == rows - rejected
    rejects = pd.read_csv(bank["home"] / f"{source}.rej.csv", dtype=str, keep_default_na=False)
    assert len(rejects) == rejected


def test_same_seed_same_bytes_and_unknown_example(bank: dict, tmp_path: Path) -> None:
    from features.examples import write_example

    write_example("retail-bank", tmp_path, 30, 5)
    for name in ("crm_customers.csv", "web_sessions.csv"):
        ours = (tmp_path / "exports" / name).read_bytes()
        assert ours == (bank["home"] / "exports" / name).read_bytes()
    done = maestro(tmp_path / "other", "init", "--example", "retail-banks")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "maestro: error: unknown example 'retail-banks' (examples: retail-bank)"
    ]
    assert not (tmp_path / "other" / "feature_repo").exists()


def test_materialized_custom_feature_reaches_a_decision(bank: dict) -> None:
    from serving.factory import build_app
    from serving.settings import Settings

    home = bank["home"]
    assert "source crm: 30 new staged rows, 30 customers written" in bank["materialized"]
    crm = list(csv.DictReader((home / "exports" / "crm_customers.csv").open()))
    first = next(r for r in crm if r["CustomerID"] == "c-000007")  # one good row only
    settings = Settings(
        home=home,
        mlflow_tracking_uri=f"sqlite:///{home / 'mlflow.db'}",
        roll_seconds=0.5,
        time_budget_ms=2000.0,
        admission_queue_ms=10_000.0,
    )
    app = build_app(settings)
    with serve_in_thread(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        body = client.post("/decide", json={"customer_id": "c-000007"}).json()
        assert body["degraded"] is False, body
        app.state.service.log.roll()
    frame = pd.read_parquet(home / "logs" / "decisions")
    logged = json.loads(frame[frame["event_id"] == body["event_id"]].iloc[0]["customer_features"])
    assert logged["products_held"] == int(first["ProductsHeld"])
    assert logged["crm_language"] == first["PreferredLanguage"].lower()
    assert logged["tenure_months"] == int(first["TenureMonths"])


def test_the_documented_counts_are_the_generators(tmp_path: Path) -> None:
    from features.examples.retail_bank import SEEDED_REJECTS

    assert SEEDED_REJECTS == EXPECTED


def test_init_again_is_idempotent_and_a_foreign_declaration_is_kept(tmp_path: Path) -> None:
    from features.errors import WorkspaceError
    from features.examples import write_example

    first = write_example("retail-bank", tmp_path / "a", 12, 1)
    before = {p: Path(p).read_bytes() for p in first}
    assert write_example("retail-bank", tmp_path / "a", 12, 1) == first
    assert {p: Path(p).read_bytes() for p in first} == before
    own = tmp_path / "b" / "features.yaml"
    own.parent.mkdir()
    own.write_text("version: 1\n")
    with pytest.raises(WorkspaceError, match="exists and is not the example's"):
        write_example("retail-bank", tmp_path / "b", 12, 1)
    assert own.read_text() == "version: 1\n"
    assert not (tmp_path / "b" / "exports").exists()
