"""Business rules: every exclusion reason, on the shipped catalog and on hand-built rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from policies.catalog import Catalog
from policies.contact_rules import Contact
from policies.decision import decide_with_rules
from policies.registry import make_policy
from policies.rules import RuleSet
from policies.types import CONTACT_CHANNELS, Action, Context

NOON_UTC = datetime(2026, 6, 1, 12, 0, tzinfo=UTC).timestamp()
DAY = 86_400.0
MIDNIGHT_UTC = datetime(2026, 6, 1, 0, 30, tzinfo=UTC).timestamp()


def customer(**overrides) -> dict:
    base = {f"consent_{c}": True for c in CONTACT_CHANNELS}
    base.update({f"sends_{c}_7d": 0 for c in CONTACT_CHANNELS})
    base.update({f"sends_{c}_30d": 0 for c in CONTACT_CHANNELS})
    base.update(open_complaint=False, overdue_invoice=False, timezone="UTC")
    base.update(overrides)
    return base


def reasons(
    catalog: Catalog, dp: str, cust: dict, ts: float = NOON_UTC, request=None
) -> dict[str, str]:
    point = catalog[dp]
    ctx = Context("c-1", cust, request or {}, dp, ts)
    _, excluded = point.rules.split(ctx, point.actions)
    return {e.action_id: e.reason for e in excluded}


def test_all_allowed_for_a_consenting_customer_at_noon(catalog: Catalog) -> None:
    assert reasons(catalog, "cart_abandoned", customer()) == {}


def test_no_consent(catalog: Catalog) -> None:
    got = reasons(catalog, "cart_abandoned", customer(consent_sms=False))
    assert got == {"sms_discount": "no_consent:sms"}


def test_missing_consent_feature_means_no_consent(catalog: Catalog) -> None:
    cust = customer()
    del cust["consent_whatsapp"]
    assert reasons(catalog, "cart_abandoned", cust) == {"whatsapp_reminder": "no_consent:whatsapp"}


def test_in_app_needs_no_consent_and_no_contact_is_always_eligible(catalog: Catalog) -> None:
    cust = customer(**{f"consent_{c}": False for c in CONTACT_CHANNELS})
    got = reasons(catalog, "cart_abandoned", cust)
    assert "in_app_free_shipping" not in got and "no_contact" not in got
    assert got["email_reminder"] == "no_consent:email"


def test_frequency_caps_count_the_history_not_the_sends_features(catalog: Catalog) -> None:
    point = catalog["cart_abandoned"]
    # the legacy feature says 9 sends this week: no longer what the caps count
    assert reasons(catalog, "cart_abandoned", customer(sends_email_7d=9)) == {}
    week = [Contact(NOON_UTC - 3600.0 * h, "email", "email_reminder", "reminder", "marketing")
            for h in (1, 30, 100)]
    _, excluded = point.rules.contact.split(point.actions, week, NOON_UTC)
    got = {e.action_id: e.reason for e in excluded}
    assert got == {"email_reminder": "cap:email:7d", "email_discount": "cap:email:7d"}
    month = [Contact(NOON_UTC - DAY * (8 + d), "email", "x", "", "marketing") for d in range(10)]
    _, excluded = point.rules.contact.split(point.actions, month, NOON_UTC)
    assert {e.action_id: e.reason for e in excluded}["email_reminder"] == "cap:email:30d"


def test_open_complaint_blocks_marketing_only(catalog: Catalog) -> None:
    got = reasons(catalog, "onboarding", customer(open_complaint=True))
    assert got == {"email_first_purchase_discount": "suppressed:open_complaint"}


def test_overdue_invoice_allows_only_billing(catalog: Catalog) -> None:
    got = reasons(catalog, "cart_abandoned", customer(overdue_invoice=True))
    assert set(got) == {a.id for a in catalog["cart_abandoned"].actions} - {"no_contact"}
    assert set(got.values()) == {"suppressed:overdue_invoice"}
    assert reasons(catalog, "billing_overdue", customer(overdue_invoice=True)) == {}


def test_quiet_hours_in_the_customers_time_zone(catalog: Catalog) -> None:
    # 00:30 UTC is quiet in London, 09:30 in Tokyo is not.
    got = reasons(catalog, "cart_abandoned", customer(timezone="Europe/London"), MIDNIGHT_UTC)
    assert set(got) == {
        "push_reminder",
        "push_discount",
        "sms_discount",
        "whatsapp_reminder",
        "call_center_assist",
    }
    assert set(got.values()) == {"quiet_hours"}
    assert reasons(catalog, "cart_abandoned", customer(timezone="Asia/Tokyo"), MIDNIGHT_UTC) == {}


def test_required_action_features() -> None:
    rules = RuleSet.from_config({"required_action_features": ["offer"]})
    ctx = Context("c-1", customer())
    _, excluded = rules.split(
        ctx, [Action("a", "in_app", {}), Action("b", "in_app", {"offer": "x"})]
    )
    assert [(e.action_id, e.reason) for e in excluded] == [("a", "missing_feature:offer")]


def agent(aid: str, **f) -> Action:
    base = {
        "skills": "billing,technical",
        "level": 2,
        "languages": "es,en",
        "load": 1,
        "capacity": 5,
    }
    base.update(f)
    return Action(aid, "agent", base)


@pytest.mark.parametrize(
    ("agent_features", "request_ctx", "cust", "reason"),
    [
        ({"skills": "billing"}, {"required_skill": "technical"}, {}, "skill"),
        ({"level": 1}, {"required_skill": "technical", "required_level": 2}, {}, "skill"),
        ({"languages": "en"}, {"language": "es"}, {}, "language"),
        ({"load": 5, "capacity": 5}, {}, {}, "capacity"),
        ({}, {}, {"tier": "vip"}, "retention_only"),
        ({}, {}, {"churn_risk": 0.9}, "retention_only"),
        ({"skills": "retention,technical"}, {"required_skill": "technical"}, {"tier": "vip"}, None),
        ({}, {"required_skill": "technical", "required_level": 2, "language": "es"}, {}, None),
    ],
)
def test_agent_routing(catalog: Catalog, agent_features, request_ctx, cust, reason) -> None:
    rules = catalog["agent_routing"].rules
    ctx = Context("c-1", cust, request_ctx, "agent_routing")
    _, excluded = rules.split(ctx, [agent("agent-17", **agent_features)])
    assert [e.reason for e in excluded] == ([reason] if reason else [])


@pytest.mark.parametrize("kind", ["uniform", "rules", "vw-cb"])
def test_nothing_eligible_gives_null_action_and_everything_excluded(
    catalog: Catalog, kind: str
) -> None:
    point = catalog["cart_abandoned"]
    actions = [a for a in point.actions if a.id != "no_contact"]
    cust = customer(**{f"consent_{c}": False for c in CONTACT_CHANNELS})
    cust["overdue_invoice"] = True
    decision = decide_with_rules(
        make_policy(kind), point.rules, Context("c-1", cust), actions, seed=1
    )
    assert decision.action is None and decision.ranking == ()
    assert {e.action_id for e in decision.excluded} == {a.id for a in actions}


def test_memoised_local_hour_equals_the_zone_aware_hour() -> None:
    """``local_hour`` is memoised per zone and minute: the hour agrees with the zone-aware
    clock at every second sampled across DST changes and quarter/half-hour zones."""
    import random
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from policies.rules import local_hour

    rng = random.Random(5)
    zones = ["Europe/Paris", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe", "UTC"]
    # around the 2026 DST changes (Europe 29 Mar / 25 Oct, US 8 Mar / 1 Nov, Lord Howe 5 Apr)
    centres = [1774746000, 1792890000, 1772953200, 1793512800, 1775314800]
    for zone in zones:
        for centre in centres:
            for _ in range(400):
                ts = centre + rng.uniform(-3 * 3600, 3 * 3600)
                expected = datetime.fromtimestamp(ts, ZoneInfo(zone)).hour
                assert local_hour(ts, zone) == expected, (zone, ts)
                assert local_hour(ts, zone) == expected  # from the memo
