"""Reward definitions and attribution rules: a purchase three days after two contacts,
split exactly as each rule defines; bad definitions stop the catalog load in one line."""

from __future__ import annotations

import pytest

from policies.attribution import Attribution, compile_reward
from policies.catalog import load_catalog, parse_catalog
from policies.conditions import Scope, Source
from policies.errors import CatalogError, ConditionError, OutcomeValueError

DAY = 86_400.0
T0 = 1_800_000_000.0
#: two contacts, at day 0 and day 1; the purchase at day 3 (three days after the first)
TOUCHES = [T0, T0 + DAY]
PURCHASE = T0 + 3 * DAY


def test_last_touch_gives_everything_to_the_latest_contact() -> None:
    assert Attribution("last_touch").shares(TOUCHES, PURCHASE) == [0.0, 1.0]


def test_linear_splits_equally() -> None:
    assert Attribution("linear").shares(TOUCHES, PURCHASE) == pytest.approx([0.5, 0.5],
                                                                            abs=1e-12)


def test_time_decay_halves_per_half_life() -> None:
    # ages 3 d and 2 d with a 1-day half-life: weights 1/8 and 1/4 → shares 1/3 and 2/3
    shares = Attribution("time_decay", DAY).shares(TOUCHES, PURCHASE)
    assert shares == pytest.approx([1 / 3, 2 / 3], abs=1e-12)
    # a 2-day half-life: weights 2^-1.5 and 2^-1 → 1/(1+√2) and √2/(1+√2)
    shares = Attribution("time_decay", 2 * DAY).shares(TOUCHES, PURCHASE)
    assert shares == pytest.approx([1 / (1 + 2**0.5), 2**0.5 / (1 + 2**0.5)], abs=1e-12)


@pytest.mark.parametrize("rule", ["last_touch", "linear", "time_decay"])
def test_shares_sum_to_one_and_no_contact_gives_none(rule: str) -> None:
    times = [T0, T0 + 5.0, T0 + DAY, T0 + 2.5 * DAY]
    assert sum(Attribution(rule).shares(times, PURCHASE)) == pytest.approx(1.0, abs=1e-12)
    assert Attribution(rule).shares([], PURCHASE) == []


def test_reward_expressions_read_event_properties() -> None:
    src = Source("catalog.yaml")
    assert compile_reward("properties.value", src).value({"value": 120.5}) == 120.5
    assert compile_reward("properties.value * 0.1 + 1.0", src).value({"value": 10.0}) == \
        pytest.approx(2.0, abs=1e-12)
    assert compile_reward(-1, src).value({}) == -1.0
    with pytest.raises(OutcomeValueError, match=r"properties\.value") as info:
        compile_reward("properties.value", src).value({})
    assert info.value.field == "properties.value"
    with pytest.raises(OutcomeValueError, match="finite number"):
        compile_reward("properties.value", src).value({"value": "12"})


CATALOG = """\
decision_points:
  default:
    actions: [{id: a, channel: email, features: {category: marketing}}]
    rewards:
      message_clicked: 0.2
      purchase: properties.value
      unsubscribed: -1
    attribution: {rule: time_decay, half_life: 36h}
"""


def test_catalog_loads_rewards_and_attribution(tmp_path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG)
    point = load_catalog(path)["default"]
    assert point.rewards.attribution == Attribution("time_decay", 36 * 3600.0)
    assert point.rewards.values["purchase"].value({"value": 30}) == 30.0
    assert point.rewards.values["unsubscribed"].value({}) == -1.0
    # the shipped catalog only documents them: outcomes there stay features until defined
    assert not load_catalog()["default"].rewards


@pytest.mark.parametrize(
    ("line", "bad", "message"),
    [
        ("purchase: properties.value", "purchase: properties.value +",
         "catalog.yaml:6: reward 'properties.value +': syntax error"),
        ("purchase: properties.value", "purchase: value",
         "catalog.yaml:6: reward 'value': unknown name 'value'"),
        ("message_clicked: 0.2", "message_klicked: 0.2",
         "catalog.yaml:5: decision point 'default': rewards names 'message_klicked'"),
        ("rule: time_decay", "rule: first_touch",
         "catalog.yaml:8: decision point 'default': attribution rule must be one of"),
        ("half_life: 36h", "half_life: -3h",
         "catalog.yaml:8: decision point 'default': window '-3h'"),
    ],
    ids=["syntax", "unknown-name", "unknown-outcome", "unknown-rule", "bad-half-life"],
)
def test_bad_definitions_are_one_line_errors(tmp_path, line: str, bad: str, message: str) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG.replace(line, bad))
    with pytest.raises(ConditionError) as info:
        load_catalog(path)
    text = str(info.value)
    assert text.startswith(f"{tmp_path}/{message}"), text
    assert "\n" not in text


def test_rewards_must_be_a_mapping() -> None:
    data = {"decision_points": {"default": {"rewards": [1, 2]}}}
    with pytest.raises(CatalogError, match="rewards must map outcome events"):
        parse_catalog(data, Scope(Source("c.yaml")))
