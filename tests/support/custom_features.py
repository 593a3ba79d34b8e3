"""A workspace declaration with custom features and two sources, for the feature tests:
``customer_credit`` (``credit_score`` int 300–850, ``has_mortgage`` bool from "Y"/"N")
fed by the CSV source ``crm``, and ``customer_products`` (``products_held`` int,
``product_tier`` string) fed by the Parquet source ``billing``."""

from __future__ import annotations

from pathlib import Path

from features.declared import DEFAULT_FILE

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
