"""The condition language: compile/eval tables, one-line load errors naming file and line,
``when`` rules in the catalog and segments in ``triggers.yaml``."""

from __future__ import annotations

from pathlib import Path

import cel
import pytest

from policies.catalog import load_catalog
from policies.conditions import ConditionError, Source, compile_condition, variable
from policies.segments import load_segments
from policies.types import Action, Context

FEATURES = {"lifetime_value": float, "tenure_days": int, "region": str, "vip_flag": bool}
SRC = Source("x.yaml")


def _ctx(customer: dict, request: dict | None = None, segments: dict | None = None) -> object:
    values = {variable("customer", k): v for k, v in customer.items()}
    values.update({variable("context", k): v for k, v in (request or {}).items()})
    values.update({variable("segment", k): v for k, v in (segments or {}).items()})
    return cel.Context(values)


@pytest.mark.parametrize(
    ("expression", "customer", "request_", "expected"),
    [
        ("customer.lifetime_value > 2000 && customer.tenure_days > 365",
         {"lifetime_value": 2500.0, "tenure_days": 400}, {}, True),
        ("customer.lifetime_value > 2000 && customer.tenure_days > 365",
         {"lifetime_value": 2500.0, "tenure_days": 100}, {}, False),
        ("customer.region in ['north', 'east']", {"region": "east"}, {}, True),
        ("context.page == 'pricing'", {}, {"page": "pricing"}, True),
        ("context.page == 'pricing'", {}, {"page": "home"}, False),
        ("customer.vip_flag || customer.lifetime_value >= 10.5",
         {"lifetime_value": 10.5}, {}, True),
        # a missing input does not hold (as a missing feature fails eligibility)
        ("customer.lifetime_value > 2000", {}, {}, False),
        ("context.page == 'pricing'", {}, {}, False),
        # a runtime type mismatch (context values are not typed at load) does not hold
        ("context.page > 3", {}, {"page": "home"}, False),
        # a name inside a string literal is text, not a variable
        ("context.page == 'customer.lifetime_value'", {}, {"page": "customer.lifetime_value"},
         True),
        ("customer.region == \"a.b\" && context.page != 'x'", {"region": "a.b"}, {"page": "y"},
         True),
    ],
)
def test_compile_and_evaluate(expression, customer, request_, expected) -> None:
    condition = compile_condition(expression, SRC, FEATURES, segments=())
    assert condition.holds(_ctx(customer, request_)) is expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("customer.lifetime_value >",
         "x.yaml:2: condition 'customer.lifetime_value >': syntax error (Failed to parse"),
        ("customer.spend > 3", "x.yaml:2: condition 'customer.spend > 3': unknown feature 'spend'"),
        ("customer.region > 3",
         "x.yaml:2: condition 'customer.region > 3': type mismatch (No such overload"),
        ("customer.tenure_days + 1.5 > 3",
         "x.yaml:2: condition 'customer.tenure_days + 1.5 > 3': type mismatch"),
        ("customer.lifetime_value + 1.0",
         "x.yaml:2: condition 'customer.lifetime_value + 1.0': must be true or false, not float"),
        ("segment.nope", "x.yaml:2: condition 'segment.nope': unknown segment 'nope'"),
        ("spend > 3", "x.yaml:2: condition 'spend > 3': unknown name 'spend' (use customer."),
        ("", "x.yaml: condition '' must be a non-empty string"),
    ],
)
def test_bad_expressions_are_one_line_with_file_and_line(expression, message) -> None:
    source = Source("x.yaml", f"segments:\n  bad: \"{expression}\"\n")
    with pytest.raises(ConditionError) as info:
        compile_condition(expression, source, FEATURES, segments=())
    text = str(info.value)
    assert text.startswith(message), text
    assert "\n" not in text
    assert info.value.exit_code == 2


CATALOG = """\
decision_points:
  default:
    actions:
      - {{id: no_contact, channel: none}}
      - {{id: email_offer, channel: email, features: {{category: marketing}}}}
      - {{id: vip_call, channel: call_center, features: {{category: retention}}}}
    rules:
      when:
        - {{name: {name}, if: "{expression}", actions: [vip_call]}}
"""


def _catalog(tmp_path: Path, expression: str, name: str = "vip_only", segments=None):
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG.format(expression=expression, name=name))
    return load_catalog(path, FEATURES, segments)


def test_when_rule_excludes_with_its_reason(tmp_path: Path) -> None:
    segments = {"vip": compile_condition("customer.lifetime_value > 2000", SRC, FEATURES, ())}
    point = _catalog(tmp_path, "segment.vip && context.page == 'pricing'", segments=segments)[
        "default"
    ]
    rich = Context("c1", {"lifetime_value": 5000.0}, {"page": "pricing"})
    poor = Context("c2", {"lifetime_value": 10.0}, {"page": "pricing"})
    eligible, excluded = point.rules.split(rich, point.actions)
    assert [a.id for a in eligible] == ["no_contact", "email_offer", "vip_call"]
    assert excluded == []
    eligible, excluded = point.rules.split(poor, point.actions)
    assert [a.id for a in eligible] == ["no_contact", "email_offer"]
    assert [(e.action_id, e.reason) for e in excluded] == [("vip_call", "condition:vip_only")]
    assert point.rules.reason(poor, Action("vip_call", "call_center", {}), None) == (
        "condition:vip_only"
    )


def test_when_rule_without_name_gives_the_expression(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    text = CATALOG.replace("name: {name}, ", "")
    path.write_text(text.format(expression="customer.tenure_days > 365"))
    point = load_catalog(path, FEATURES)["default"]
    _, excluded = point.rules.split(Context("c", {"tenure_days": 3}), point.actions)
    assert [e.reason for e in excluded] == ["condition:customer.tenure_days > 365"]


def test_bad_when_rule_stops_loading_naming_catalog_line(tmp_path: Path) -> None:
    with pytest.raises(ConditionError) as info:
        _catalog(tmp_path, "customer.tenure > 3")
    assert str(info.value) == (
        f"{tmp_path / 'catalog.yaml'}:9: condition 'customer.tenure > 3': unknown feature 'tenure'"
    )


def test_segments_load_and_report_bad_ones(tmp_path: Path) -> None:
    path = tmp_path / "triggers.yaml"
    assert load_segments(path, FEATURES) == {}
    vip = '  vip: "customer.lifetime_value > 2000"\n'
    path.write_text(f'segments:\n{vip}  old: "customer.tenure_days > 365"\n')
    segments = load_segments(path, FEATURES)
    assert sorted(segments) == ["old", "vip"]
    assert segments["vip"].holds(_ctx({"lifetime_value": 2001.0}))
    path.write_text(f'segments:\n{vip}  old: "customer.tenure_days >"\n')
    with pytest.raises(ConditionError) as info:
        load_segments(path, FEATURES)
    assert str(info.value).startswith(f"{path}:3: condition 'customer.tenure_days >': syntax error")
    path.write_text('segments:\n  vip: "segment.old"\n')
    with pytest.raises(ConditionError, match=r"triggers.yaml:2: .*unknown segment 'old'"):
        load_segments(path, FEATURES)
