"""A workspace declaration with custom features and two sources, for the feature tests:
``customer_credit`` (``credit_score`` int 300–850, ``has_mortgage`` bool from "Y"/"N")
fed by the CSV source ``crm``, and ``customer_products`` (``products_held`` int,
``product_tier`` string) fed by the Parquet source ``billing``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from features.declared import DEFAULT_FILE

ROOT = Path(__file__).resolve().parents[2]

CUSTOM_VIEWS = """\
  customer_credit: {ttl: 30d, source: crm}
  customer_products: {ttl: 30d, source: billing}
"""
CUSTOM_FEATURES = """\
  # custom
  - {name: credit_score, type: int, default: 0, view: customer_credit}
  - {name: has_mortgage, type: bool, default: false, view: customer_credit}
  - {name: products_held, type: int, default: 0, view: customer_products}
  - {name: product_tier, type: string, default: none, view: customer_products}
"""
SOURCES = """\
sources:
  crm:
    kind: csv
    path: exports/crm.csv
    entity_key: crm_id
    event_time: modified
    columns:
      credit_score: {column: fico, min: 300, max: 850}
      has_mortgage: {column: mtg, values: {"Y": true, "N": false}}
  billing:
    kind: parquet
    path: exports/billing.parquet
    entity_key: account_owner
    event_time: as_of
    columns:
      products_held: {column: n_products, min: 0}
      product_tier: {column: tier}
"""


def custom_declaration(
    views: str = CUSTOM_VIEWS, features: str = CUSTOM_FEATURES, sources: str = SOURCES
) -> str:
    """The packaged default with the custom views, features and sources added."""
    text = DEFAULT_FILE.read_text()
    text = text.replace("features:\n", views + "features:\n", 1)
    return text + features + sources


def write_declaration(home: Path, text: str) -> Path:
    path = home / "features.yaml"
    path.write_text(text)
    return path


def line_of(text: str, needle: str) -> int:
    """The 1-based line of the first line of ``text`` containing ``needle``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in the text")


def write_crm(home: Path, rows: list[str]) -> None:
    """``exports/crm.csv`` with ``rows`` (``crm_id,modified,fico,mtg``) under the header."""
    (home / "exports").mkdir(exist_ok=True)
    text = "crm_id,modified,fico,mtg\n" + "\n".join(rows) + "\n"
    (home / "exports" / "crm.csv").write_text(text)


def billing(
    owners: list[str], products: list[object], tiers: list[str], as_of: str = "2026-01-01"
) -> pd.DataFrame:
    """Rows of the billing feed (``account_owner, as_of, n_products, tier``)."""
    return pd.DataFrame(
        {
            "account_owner": owners,
            "as_of": [pd.Timestamp(as_of, tz="UTC")] * len(owners),
            "n_products": pd.Series(products, dtype="object"),
            "tier": tiers,
        }
    )


def write_billing(home: Path, frame: pd.DataFrame) -> None:
    (home / "exports").mkdir(exist_ok=True)
    frame.to_parquet(home / "exports" / "billing.parquet", index=False)


def maestro(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``maestro ARGS`` in a subprocess with ``MAESTRO_HOME=home`` (this tree's code)."""
    env = {**os.environ, "MAESTRO_HOME": str(home), "PYTHONPATH": str(ROOT), "FEAST_USAGE": "False"}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
