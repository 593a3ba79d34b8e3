"""The contact policy's pure rules: sliding windows, caps per channel and across channels,
cool-downs, offer repetition, budget periods, and the catalog keys that declare them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from policies.catalog import parse_catalog
from policies.contact_rules import (
    Budget,
    Contact,
    ContactRules,
    budget_period_key,
    window_seconds,
)
from policies.errors import CatalogError
from policies.types import Action

DAY = 86_400.0
NOW = datetime(2026, 6, 3, 12, tzinfo=UTC).timestamp()  # a Wednesday
EMAIL = Action("email_news", "email", {"category": "marketing", "offer": "content"})
PUSH = Action("push_tip", "push", {"category": "service", "offer": "tip"})
SMS = Action("sms_deal", "sms", {"category": "marketing", "offer": "discount"})
NONE = Action("no_contact", "none", {"category": "none"})


def sent(days_ago: float, channel: str = "email", offer: str = "x", category: str = "marketing"):
    return Contact(NOW - days_ago * DAY, channel, "a", offer, category)


def reasons(rules: ContactRules, history: list[Contact], actions=(EMAIL, PUSH, SMS, NONE)):
    _, excluded = rules.split(list(actions), history, NOW)
    return {e.action_id: e.reason for e in excluded}


@pytest.mark.parametrize(
    ("text", "seconds"), [("90m", 5400.0), ("24h", DAY), ("7d", 7 * DAY), ("2w", 14 * DAY),
                          ("0.5h", 1800.0)]
)
def test_windows(text: str, seconds: float) -> None:
    assert window_seconds(text) == pytest.approx(seconds, rel=1e-12)


@pytest.mark.parametrize("bad", ["7", "7y", "-1d", "0d", "d7", ""])
def test_malformed_windows_fail_at_load(bad: str) -> None:
    with pytest.raises(CatalogError, match="window"):
        window_seconds(bad)


def test_a_sliding_window_counts_only_contacts_inside_it() -> None:
    rules = ContactRules.from_config([{"channel": "email", "window": "7d", "max": 2}], None, None)
    assert reasons(rules, [sent(8), sent(9), sent(1)]) == {}  # 8 and 9 days old: outside
    assert reasons(rules, [sent(6.9), sent(1)]) == {"email_news": "cap:email:7d"}
    # a contact exactly 7 days old has left the window
    assert reasons(rules, [sent(7.0), sent(1)]) == {}


def test_any_channel_cap_with_categories() -> None:
    rules = ContactRules.from_config(
        [{"channel": "any", "window": "7d", "max": 2, "categories": ["marketing"]}], None, None
    )
    history = [sent(1, "sms"), sent(2, "push")]
    # the service push is not a marketing action: not capped by a marketing cap
    assert reasons(rules, history) == {"email_news": "cap:any:7d", "sms_deal": "cap:any:7d"}
    # service contacts do not count toward it either
    assert reasons(rules, [sent(1, category="service"), sent(2, category="service")]) == {}


def test_cooldown_and_offer_repetition() -> None:
    rules = ContactRules.from_config(
        None, [{"window": "48h", "categories": ["marketing"]}], "14d"
    )
    assert reasons(rules, [sent(1.5, "push")]) == {
        "email_news": "cooldown:48h", "sms_deal": "cooldown:48h"
    }
    assert reasons(rules, [sent(2.5, "push", offer="discount")]) == {
        "sms_deal": "repeat:discount:14d"
    }
    assert reasons(rules, [sent(15, "push", offer="discount")]) == {}


def test_exhausted_budgets_exclude_and_empty_rules_keep_everything() -> None:
    rules = ContactRules()
    assert not rules.active
    eligible, excluded = rules.split([EMAIL, NONE], [sent(0.1)] * 50, NOW,
                                     {"email_news": "budget:email_news:day"})
    assert eligible == [NONE]
    assert [(e.action_id, e.reason) for e in excluded] == [("email_news", "budget:email_news:day")]


def test_budget_periods() -> None:
    assert budget_period_key("a", "campaign", NOW) == "a:campaign"
    day = int(NOW // DAY)
    assert budget_period_key("a", "day", NOW) == f"a:day:{day}"
    monday = datetime(2026, 6, 1, tzinfo=UTC).timestamp() // DAY
    assert budget_period_key("a", "week", NOW) == f"a:week:{int(monday)}"
    assert budget_period_key("a", "week", NOW + 5 * DAY) == f"a:week:{int(monday) + 7}"
    with pytest.raises(CatalogError, match="per"):
        Budget(10, "month")
    with pytest.raises(CatalogError, match="max"):
        Budget(-1, "day")


def _catalog(point: dict) -> dict:
    return {"decision_points": {"default": point}}


def test_the_catalog_declares_caps_cooldowns_repetition_budgets_and_activation() -> None:
    catalog = parse_catalog(_catalog({
        "activation": "required",
        "rules": {"frequency_caps": [{"channel": "any", "window": "7d", "max": 3,
                                      "categories": ["marketing"]}],
                  "cooldowns": [{"window": "48h"}], "offer_repeat": "14d"},
        "actions": [{"id": "coupon", "channel": "email", "features": {"category": "marketing"},
                     "budget": {"max": 1000, "per": "day"}}],
    }))
    point = catalog["default"]
    assert point.activation == "required"
    assert point.budgets == {"coupon": Budget(1000, "day")}
    assert point.rules.contact.horizon_seconds == 14 * DAY
    assert point.rules.frequency_caps[0].reason == "cap:any:7d"


@pytest.mark.parametrize(
    ("point", "match"),
    [
        ({"activation": "later", "actions": []}, "activation"),
        ({"rules": {"frequency_caps": [{"channel": "fax", "window": "7d", "max": 1}]}},
         "unknown channel"),
        ({"rules": {"frequency_caps": [{"channel": "email", "window": "7x", "max": 1}]}},
         "window"),
        ({"rules": {"cooldowns": [{"window": "48h", "when": "x"}]}}, "unknown keys"),
        ({"rules": {"offer_repeat": "soon"}}, "window"),
        ({"actions": [{"id": "a", "channel": "email", "budget": {"max": 5, "per": "year"}}]},
         "per must be"),
    ],
)
def test_bad_contact_policy_config_fails_loudly(point: dict, match: str) -> None:
    with pytest.raises(CatalogError, match=match):
        parse_catalog(_catalog(point))
