"""``triggers:`` of ``triggers.yaml``: the fixed shape loads (dwell, absence, sequence,
no dwell), and every bad file is one line ``file:line: problem`` naming the trigger."""

from __future__ import annotations

import re
from pathlib import Path

import cel
import pytest
from trigger_yaml import CATALOG, FEATURES, TRIGGERS_YAML

from features.events import EVENT_TYPES
from policies.catalog import load_catalog
from policies.conditions import ConditionError, event_values, variable
from policies.segments import load_segments
from serving.errors import TriggerConfigError
from serving.triggers.spec import load_triggers

GOOD = TRIGGERS_YAML


def load(tmp_path: Path, text: str) -> dict:
    path = tmp_path / "triggers.yaml"
    path.write_text(text)
    segments = load_segments(path, FEATURES)
    catalog = load_catalog(CATALOG, FEATURES, segments)
    return load_triggers(path, catalog, FEATURES, segments, EVENT_TYPES)


def test_the_issue_shape_loads(tmp_path: Path) -> None:
    triggers = load(tmp_path, GOOD)
    assert list(triggers) == ["vip_on_pricing", "abandoned_cart", "overdue_now"]
    vip = triggers["vip_on_pricing"]
    assert vip.on.type == "page_view" and len(vip.on.when) == 2
    assert [(s.seconds, s.decision_point, s.deliver) for s in vip.steps] == [
        (120.0, "churn_risk", "crm_hook")
    ]
    assert [c.type for c in vip.cancel_on] == ["page_view"]
    cart = triggers["abandoned_cart"]
    assert [(s.seconds, s.decision_point, s.deliver, dict(s.context)) for s in cart.steps] == [
        (3600.0, "cart_abandoned", "engine_stream", {"reason": "cart"}),
        (86400.0, "cart_abandoned", "crm_hook", {"reason": "cart"}),  # inherits decide
    ]
    assert [c.type for c in cart.cancel_on] == ["purchase", "page_view"]
    assert triggers["overdue_now"].steps[0].seconds == 0.0  # no dwell: at once


def test_event_conditions_read_the_event(tmp_path: Path) -> None:
    cond = load(tmp_path, GOOD)["vip_on_pricing"].on.when[0]
    act = cel.Context(event_values("page_view", {"page": "pricing"}))
    assert cond.holds(act) is True
    assert cond.holds(cel.Context(event_values("page_view", {"page": "home"}))) is False
    vip = load(tmp_path, GOOD)["vip_on_pricing"].on.when[1]
    assert vip.holds(cel.Context({variable("segment", "vip"): True})) is True


def test_trigger_errors_exit_2() -> None:
    assert TriggerConfigError("x").exit_code == 2


def test_no_file_or_no_section_is_no_triggers(tmp_path: Path) -> None:
    assert load(tmp_path, "segments:\n  vip: 'customer.lifetime_value > 1'\n") == {}


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("decision_point: churn_risk}", "decision_point: nope}",
         r"triggers.yaml:10: trigger 'vip_on_pricing': unknown decision point 'nope'"),
        ("type: purchase}", "type: purchased}",
         r"triggers.yaml:16: trigger 'abandoned_cart': unknown event type 'purchased'"),
        ("    deliver: crm_hook\n  abandoned", "    deliver: crm_hooks\n  abandoned",
         r"triggers.yaml:11: trigger 'vip_on_pricing': unknown destination 'crm_hooks'"),
        ("event.properties.cart_value > 0", "event.properties.cart_value > 'x'",
         r"triggers.yaml:13: condition .*type mismatch"),
        ("event.properties.page == 'pricing'", "event.properties.page ==",
         r"triggers.yaml:8: condition .*syntax error"),
        ("segment.vip", "segment.vips", r"triggers.yaml:8: condition .*unknown segment 'vips'"),
        ("customer.lifetime_value > 2000", "customer.ltv > 2000",
         r"triggers.yaml:2: condition .*unknown feature 'ltv'"),
        ("dwell: {seconds: 120,", "dwell: {seconds: -1,",
         r"triggers.yaml:9: trigger 'vip_on_pricing': dwell.seconds must be a number"),
        ("{seconds: 86400, deliver", "{seconds: 60, deliver",
         r"triggers.yaml:19: trigger 'abandoned_cart': each step of then must come later"),
        ("    deliver: engine_stream\n    then",
         "    deliver: engine_stream\n    when: 1\n    then",
         r"triggers.yaml:19: trigger 'abandoned_cart': unknown key 'when'"),
        ("  overdue_now:\n    on: {type: invoice_overdue}\n", "  overdue_now:\n",
         r"triggers.yaml:\d+: trigger 'overdue_now': missing 'on'"),
        ("triggers:\n", "triggers:\n  bad: [1\n", r"triggers.yaml:\d+: invalid YAML"),
        ("  overdue_now:", "  overdue-now:",
         r"triggers.yaml:21: trigger name 'overdue-now' must be an identifier"),
    ],
)
def test_bad_triggers_are_one_line_errors(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in GOOD, old
    with pytest.raises(ConditionError) as info:  # TriggerConfigError is one: exit 2
        load(tmp_path, GOOD.replace(old, new, 1))
    text = str(info.value)
    assert "\n" not in text
    assert re.search(message, text), text
