"""The ``retail-bank`` example: four systems of record exported as CSV, the way a bank's
CRM, ticketing, billing and web-analytics tools would export them, and the
``features.yaml`` that declares custom features over them.

The files are generated from the seed (same seed, same bytes) for the first customers of
the synthetic population (same ids, so a decision sees both). Timestamps are fixed dates
in the past, so the example does not depend on the clock. Values are messy the way real
exports are (mixed case, empty strings, ``Y``/``N``/blank flags) and the declaration's
value maps absorb that; a few rows are bad on purpose, :data:`SEEDED_REJECTS` per source,
and ``maestro load`` rejects exactly those.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

from features.declared import DEFAULT_FILE, workspace_declaration_path
from features.errors import WorkspaceError
from features.synthetic import customer_id

#: the example covers at most this many customers (the rest keep only synthetic features)
MAX_CUSTOMERS = 2_000
#: what ``maestro load`` rejects per source and reason (the bad rows written on purpose)
SEEDED_REJECTS: dict[str, dict[str, int]] = {
    "crm": {"wrong_type:products_held": 1, "duplicate_key": 2},
    "ticketing": {"unknown_customer": 1, "future_timestamp": 1},
    "billing": {"wrong_type:amount_due": 1, "unknown_customer": 1},
    "web": {"future_timestamp": 1, "duplicate_key": 2, "wrong_type:web_page_views": 1},
}
UNKNOWN = "c-999999"
FUTURE = "2099-01-01T09:00:00Z"
_SEGMENTS = ["Mass", "MASS", "mass", "Affluent", "affluent", "Private", "private "]
_LANGUAGES = ["en", "EN", "En", "fr", "FR", "de", "De"]
_ZONES = ["Europe/London", "Europe/Paris", "Europe/Berlin", "America/New_York"]
_BANDS = ["A", "a", "B", "b", "C", "c", "D", "E", ""]
_FLAGS = ["Y", "Y", "N", ""]

CUSTOM_VIEWS = """\
  crm_profile: {ttl: 0, source: crm}
  ticketing_cases: {ttl: 0, source: ticketing}
  billing_status: {ttl: 0, source: billing}
  web_activity: {ttl: 0, source: web}
"""
CUSTOM_FEATURES = """\
  # retail-bank example: custom features fed by the four exports under exports/
  - {name: crm_segment, type: string, default: "unknown", view: crm_profile}
  - {name: tenure_months, type: int, default: 0, view: crm_profile}
  - {name: products_held, type: int, default: 0, view: crm_profile}
  - {name: credit_score_band, type: string, default: "unknown", view: crm_profile}
  - {name: marketing_consent, type: bool, default: false, view: crm_profile}
  - {name: crm_timezone, type: string, default: "UTC", view: crm_profile}
  - {name: crm_language, type: string, default: "en", view: crm_profile}
  - {name: complaint_open, type: bool, default: false, view: ticketing_cases}
  - {name: mortgage_enquiry, type: bool, default: false, view: ticketing_cases}
  - {name: amount_due, type: float, default: 0.0, view: billing_status}
  - {name: invoice_overdue, type: bool, default: false, view: billing_status}
  - {name: days_past_due, type: int, default: 0, view: billing_status}
  - {name: web_page_views, type: int, default: 0, view: web_activity}
  - {name: viewed_mortgage_calculator, type: bool, default: false, view: web_activity}
"""
SOURCES = """\
sources:
  crm:                               # the customer master: other sources' unknown ids are rejected
    kind: csv
    path: exports/crm_customers.csv
    entity_key: CustomerID
    event_time: LastModified
    defines_customers: true
    columns:
      crm_segment:
        column: SEGMENT
        values: {"Mass": mass, "MASS": mass, "mass": mass, "Affluent": affluent,
                 "affluent": affluent, "Private": private, "private": private}
      tenure_months: {column: TenureMonths, min: 0}
      products_held: {column: ProductsHeld, min: 0, max: 20}
      credit_score_band:
        column: CreditBand
        values: {"A": A, "a": A, "B": B, "b": B, "C": C, "c": C, "D": D, "E": E, "": unknown}
      marketing_consent: {column: MarketingOptIn, values: {"Y": true, "N": false, "": false}}
      crm_timezone: {column: TimeZone}
      crm_language:
        column: PreferredLanguage
        values: {"en": en, "EN": en, "En": en, "fr": fr, "FR": fr, "de": de, "De": de}
  ticketing:
    kind: csv
    path: exports/ticketing_complaints.csv
    entity_key: customer_ref
    event_time: opened_at
    columns:
      complaint_open:
        column: status
        values: {"OPEN": true, "Open": true, "open": true, "Pending": true,
                 "CLOSED": false, "Closed": false, "closed": false}
      mortgage_enquiry:
        column: category
        values: {"Mortgage": true, "mortgage": true, "MORTGAGE": true, "Fees": false,
                 "fees": false, "Card": false, "App": false, "": false}
  billing:
    kind: csv
    path: exports/billing_invoices.csv
    entity_key: account_holder
    event_time: invoice_date
    columns:
      amount_due: {column: amount_due, min: 0}
      invoice_overdue:
        column: overdue
        values: {"Y": true, "y": true, "N": false, "n": false, "": false}
      days_past_due: {column: dpd, min: 0}
  web:
    kind: csv
    path: exports/web_sessions.csv
    entity_key: visitor_customer_id
    event_time: session_start
    columns:
      web_page_views: {column: page_views, min: 0}
      viewed_mortgage_calculator: {column: mortgage_calculator}
"""


def declaration_text() -> str:
    """The packaged default ``features.yaml`` with the example's views, features, sources."""
    text = DEFAULT_FILE.read_text()
    text = text.replace("features:\n", CUSTOM_VIEWS + "features:\n", 1)
    return text + CUSTOM_FEATURES + SOURCES


def _stamp(day: int, second: int) -> str:
    """A fixed past time: 2025-<month>-<day>, mixed ISO spellings as exports have them."""
    month, dom = 1 + day // 28, 1 + day % 28
    hh, mm, ss = second // 3600 % 24, second // 60 % 60, second % 60
    if second % 3 == 0:
        return f"2025-{month:02d}-{dom:02d} {hh:02d}:{mm:02d}:{ss:02d}"
    return f"2025-{month:02d}-{dom:02d}T{hh:02d}:{mm:02d}:{ss:02d}Z"


def _crm(rng: random.Random, ids: list[str]) -> list[list[str]]:
    rows = []
    for i, cid in enumerate(ids):
        rows.append(
            [
                cid,
                _stamp(rng.randrange(200), i * 7),
                rng.choice(_SEGMENTS),
                str(rng.randrange(1, 240)),
                str(rng.randrange(1, 7)),
                rng.choice(_BANDS),
                rng.choice(_FLAGS),
                rng.choice(_ZONES),
                rng.choice(_LANGUAGES),
            ]
        )
    # bad on purpose: a later update with "two" for a count; the same update exported twice
    rows.append([ids[0], _stamp(250, 11), "Mass", "12", "two", "A", "Y", _ZONES[0], "en"])
    dup = [ids[-1], _stamp(251, 5), "affluent", "30", "3", "b", "N", _ZONES[1], "FR"]
    return [*rows, dup, list(dup)]


def _ticketing(rng: random.Random, ids: list[str]) -> list[list[str]]:
    rows = []
    for i, cid in enumerate(ids[::3]):
        for k in range(rng.randrange(1, 3)):
            rows.append(
                [
                    f"CASE-{i:05d}-{k}",
                    cid,
                    _stamp(rng.randrange(200), i * 11 + k * 3600),
                    rng.choice(["OPEN", "Open", "open", "Pending", "CLOSED", "closed"]),
                    rng.choice(["Mortgage", "mortgage", "Fees", "fees", "Card", "App", ""]),
                ]
            )
    rows.append(["CASE-99998", UNKNOWN, _stamp(100, 1), "Open", "Fees"])
    rows.append(["CASE-99999", ids[0], FUTURE, "OPEN", "Mortgage"])
    return rows


def _billing(rng: random.Random, ids: list[str]) -> list[list[str]]:
    rows = []
    for i, cid in enumerate(ids[::2]):
        overdue = rng.random() < 0.2
        rows.append(
            [
                f"INV-{i:06d}",
                cid,
                _stamp(rng.randrange(200), i * 13),
                f"{rng.uniform(5, 900):.2f}",
                rng.choice(["Y", "y"] if overdue else ["N", "n", ""]),
                str(rng.randrange(1, 90) if overdue else 0),
            ]
        )
    rows.append(["INV-999998", ids[1 % len(ids)], _stamp(230, 2), "12,50", "N", "0"])
    rows.append(["INV-999999", UNKNOWN, _stamp(231, 3), "40.00", "Y", "12"])
    return rows


def _web(rng: random.Random, ids: list[str]) -> list[list[str]]:
    rows = []
    for i, cid in enumerate(ids):
        for k in range(rng.randrange(0, 3)):
            rows.append(
                [
                    f"S{i:06d}{k}",
                    cid,
                    _stamp(rng.randrange(200), i * 17 + k * 600),
                    str(rng.randrange(1, 40)),
                    rng.choice(["true", "FALSE", "1", "0", "False"]),
                    rng.choice(["mobile", "Desktop", "desktop", "tablet"]),
                ]
            )
    dup = ["S9999990", ids[0], _stamp(240, 9), "4", "1", "mobile"]
    rows += [dup, ["S9999991", *dup[1:]]]
    rows.append(["S9999992", ids[0], FUTURE, "2", "0", "mobile"])
    rows.append(["S9999993", ids[0], _stamp(241, 4), "", "0", "Desktop"])
    return rows


_FILES = {
    "crm_customers.csv": (
        _crm,
        [
            "CustomerID",
            "LastModified",
            "SEGMENT",
            "TenureMonths",
            "ProductsHeld",
            "CreditBand",
            "MarketingOptIn",
            "TimeZone",
            "PreferredLanguage",
        ],
    ),
    "ticketing_complaints.csv": (
        _ticketing,
        ["case_id", "customer_ref", "opened_at", "status", "category"],
    ),
    "billing_invoices.csv": (
        _billing,
        ["invoice_id", "account_holder", "invoice_date", "amount_due", "overdue", "dpd"],
    ),
    "web_sessions.csv": (
        _web,
        [
            "session_id",
            "visitor_customer_id",
            "session_start",
            "page_views",
            "mortgage_calculator",
            "device",
        ],
    ),
}


def write_example(home: Path, customers: int, seed: int) -> list[str]:
    """Write ``exports/*.csv`` and ``features.yaml`` under ``home``; the paths written.

    A ``features.yaml`` that is already there and differs from the example's is kept and
    the command fails (it is the workspace's own declaration)."""
    declaration = workspace_declaration_path(home)
    text = declaration_text()
    if declaration.exists() and declaration.read_text() != text:
        raise WorkspaceError(
            f"{declaration} exists and is not the example's: move it away to init the example"
        )
    ids = [customer_id(i) for i in range(min(customers, MAX_CUSTOMERS))]
    exports = home / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    written = []
    for offset, (name, (make, header)) in enumerate(_FILES.items()):
        path = exports / name
        with path.open("w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(header)
            out.writerows(make(random.Random(seed * 1_000 + offset), ids))
        written.append(str(path))
    declaration.write_text(text)
    return [*written, str(declaration)]
