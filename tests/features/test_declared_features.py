"""Features declared in ``features.yaml``, not coded: the packaged default reproduces the
built-in schema; a bad declaration stops ``maestro apply`` with one line naming the file,
line and problem (exit 2) before anything reaches Feast; a good one adds custom views
that the online reads serve (declared defaults for an unknown customer)."""

from __future__ import annotations

from pathlib import Path

import pytest
from custom_features import (
    billing,
    custom_declaration,
    line_of,
    maestro,
    write_billing,
    write_crm,
    write_declaration,
)

from features import schema
from features.declared import DEFAULT_FILE, load_declaration
from features.yaml_lines import DeclarationError


def _exports(home: Path) -> None:
    write_crm(home, ["c-000001,2026-01-01T00:00:00Z,700,Y"])
    write_billing(home, billing(["c-000001"], [2], ["gold"]))


def test_packaged_default_reproduces_the_built_in_schema() -> None:
    decl = load_declaration(DEFAULT_FILE)
    assert decl.types() == schema.ALL_FEATURES
    defaults = decl.defaults()
    assert defaults == dict(schema.DEFAULTS)
    assert {k: type(v) for k, v in defaults.items()} == {
        k: type(v) for k, v in schema.DEFAULTS.items()
    }
    assert {v.name: v.ttl_seconds for v in decl.views} == schema.TTL_SECONDS
    for view in decl.views:
        assert [f.name for f in decl.view_features(view.name)] == list(schema.GROUPS[view.name])
    assert decl.custom() == [] and decl.sources == ()


def test_generated_feast_objects_match_the_built_in_views() -> None:
    from features.feast.definitions import feast_objects
    from features.feast.views import silence_feast_warnings

    silence_feast_warnings()
    objs = feast_objects(load_declaration(DEFAULT_FILE))
    for view, group in schema.GROUPS.items():
        fv = objs[view]
        assert sorted(f.name for f in fv.schema) == sorted(group), view
        assert {f.name: f.dtype.to_value_type().name for f in fv.schema} == {
            n: {str: "STRING", int: "INT64", float: "DOUBLE", bool: "BOOL"}[t]
            for n, t in group.items()
        }
        assert fv.ttl.total_seconds() == schema.TTL_SECONDS[view]
    assert type(objs["customer_session"]).__name__ == "StreamFeatureView"
    assert {p.name for p in objs["policy_inputs_v1"].feature_view_projections} == set(schema.GROUPS)
    assert objs["customer_profile"].stream_source is None  # the profile takes no pushes


@pytest.mark.parametrize(
    "mutate, needle, problem",
    [
        (
            "name: credit_score, type: int|name: credit_score, type: integer",
            "type: integer",
            "feature credit_score: unknown type 'integer' (use string, int, float, bool)",
        ),
        (
            "{column: fico, min: 300|{column: fica, min: 300",
            "column: fica,",
            "source crm: column 'fica' is not in crm.csv",
        ),
        (
            "name: products_held, type: int, default: 0|name: churn_risk, type: float, default: 0",
            "name: churn_risk, type: float, default: 0, view: customer_products",
            "feature churn_risk: clashes with the built-in feature churn_risk",
        ),
        (
            "view: customer_products}\n  - {name: product_tier|view: customer_products}\n  - "
            "{name: credit_score, type: int, default: 0, view: customer_credit}\n  - {name: "
            "product_tier",
            "{name: credit_score, type: int, default: 0, view: customer_credit}\n",
            "feature credit_score: declared twice",
        ),
        (
            "name: credit_score, type: int, default: 0|name: credit_score, type: int, default: low",
            "default: low",
            "feature credit_score: default 'low' is not a int",
        ),
        (
            "view: customer_credit}|view: customer_credit_v2}",
            "view: customer_credit_v2}",
            "feature credit_score: unknown view 'customer_credit_v2'",
        ),
        (
            "name: products_held, type: int, default: 0, view: customer_products|name: "
            "products_held, type: int, default: 0, view: customer_profile",
            "view: customer_profile}",
            "feature products_held: view customer_profile is "
            "built-in; give custom features a view of their own",
        ),
        (
            "kind: parquet|kind: oracle",
            "kind: oracle",
            "source billing: unknown kind 'oracle' (use csv, parquet, postgres)",
        ),
        (
            "  customer_credit: {ttl: 30d, source: crm}|  customer_credit: {ttl: soon, "
            "source: crm}",
            "ttl: soon",
            "view customer_credit: ttl 'soon' is not a duration (e.g. 30d, 2h, 0)",
        ),
        (
            "    entity_key: crm_id\n|    entity_key: [crm_id\n",
            "event_time: modified",
            "invalid YAML: expected ',' or ']', but got ':'",
        ),
    ],
    ids=[
        "unknown-type",
        "missing-column",
        "builtin-clash",
        "duplicate",
        "bad-default",
        "unknown-view",
        "custom-in-builtin-view",
        "unknown-kind",
        "bad-ttl",
        "yaml-syntax",
    ],
)
def test_a_bad_declaration_names_file_line_and_problem(
    tmp_path: Path, mutate: str, needle: str, problem: str
) -> None:
    _exports(tmp_path)
    old, new = mutate.split("|")
    text = custom_declaration()
    assert old in text
    text = text.replace(old, new, 1)
    path = write_declaration(tmp_path, text)
    if "\n" in needle:  # the duplicate: its second declaration
        line = [
            i for i, x in enumerate(text.splitlines(), 1) if x.strip("- \n") == needle.strip("- \n")
        ][-1]
    else:
        line = line_of(text, needle)
    with pytest.raises(DeclarationError) as err:
        load_declaration(path, tmp_path)
    assert str(err.value) == f"features.yaml:{line}: {problem}"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from features.workspace import init_feature_workspace

    home = tmp_path_factory.mktemp("declared-home")
    init_feature_workspace(home, customers=20, seed=3)
    _exports(home)
    return home


@pytest.mark.parametrize(
    "old, new, problem",
    [
        (
            "name: credit_score, type: int",
            "name: credit_score, type: integer",
            "feature credit_score: unknown type 'integer' (use string, int, float, bool)",
        ),
        (
            "{column: fico, min: 300",
            "{column: fica, min: 300",
            "source crm: column 'fica' is not in crm.csv",
        ),
        (
            "name: products_held, type: int",
            "name: churn_risk, type: float",
            "feature churn_risk: clashes with the built-in feature churn_risk",
        ),
    ],
    ids=["unknown-type", "missing-column", "builtin-clash"],
)
def test_maestro_apply_refuses_bad_yaml_in_one_line_and_applies_nothing(
    home: Path, old: str, new: str, problem: str
) -> None:
    text = custom_declaration().replace(old, new, 1)
    write_declaration(home, text)
    registry = home / "feature_repo" / "data" / "registry.db"
    before = registry.read_bytes()
    done = maestro(home, "apply")
    line = max(i for i, x in enumerate(text.splitlines(), 1) if new in x)  # the custom entry
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"maestro: error: features.yaml:{line}: {problem}"]
    assert registry.read_bytes() == before
    assert not (home / "feature_repo" / "data" / "staged").exists()


def test_maestro_apply_adds_the_custom_views_to_the_served_features(home: Path) -> None:
    from feast import FeatureStore

    from features.feast.source import FeastFeatureSource

    write_declaration(home, custom_declaration())
    done = maestro(home, "apply")
    assert done.returncode == 0, done.stderr
    summary, note = done.stdout.splitlines()
    assert summary.endswith("8 views, 70 features (4 custom), 2 sources")
    assert note == (  # a running server does not reload its declared views
        "running servers keep the features they started with: restart `maestro serve` "
        "to serve this declaration"
    )
    store = FeatureStore(repo_path=str(home / "feature_repo"))
    names = {v.name for v in store.list_feature_views()}
    assert {"customer_credit", "customer_products", "customer_profile"} <= names
    source = FeastFeatureSource(home / "feature_repo", timeout=2.0)
    try:
        unknown = source.get("nobody")
        assert unknown.known is False
        assert (unknown.values["credit_score"], unknown.values["product_tier"]) == (0, "none")
        known = source.get("c-000001")  # in the synthetic base, not loaded from crm yet
        assert known.known and known.values["credit_score"] == 0
        assert known.values["segment"] == source.get("c-000001").values["segment"]
    finally:
        source.close()
