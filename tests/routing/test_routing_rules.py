"""Agent routing in the decision core: a routed agent always qualifies (property test over
random rosters and cases, for every router), continuity as a feature, the routing reward
from the catalog, and the escalation rule of the other decision points."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.catalog import Catalog, load_catalog, parse_catalog
from policies.decision import decide_with_rules
from policies.errors import CatalogError
from policies.registry import make_policy
from policies.routing import LeastBusyPolicy, RoutingReward, occupancy, with_continuity
from policies.rules import RuleSet
from policies.types import CONTACT_CHANNELS, Action, Context

SKILLS = ("billing", "technical", "sales", "retention")
LANGS = ("en", "es", "fr")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def qualifies(agent: Action, ctx: Context, retention_churn: float = 0.7) -> bool:
    f, r, c = agent.features, ctx.request, ctx.customer
    skills = set(str(f["skills"]).split(","))
    langs = set(str(f["languages"]).split(","))
    needs_retention = float(c.get("churn_risk", 0.0)) >= retention_churn or c.get("tier") == "vip"
    return (
        r["required_skill"] in skills
        and float(f["level"]) >= float(r["required_level"])
        and r["language"] in langs
        and float(f["load"]) < float(f["capacity"])
        and (not needs_retention or "retention" in skills)
    )


agent_st = st.builds(
    lambda skills, level, langs, load, cap: {
        "skills": ",".join(sorted(skills)),
        "level": level,
        "languages": ",".join(sorted(langs)),
        "load": load,
        "capacity": cap,
    },
    st.sets(st.sampled_from(SKILLS), min_size=1),
    st.integers(1, 3),
    st.sets(st.sampled_from(LANGS), min_size=1),
    st.integers(0, 6),
    st.integers(0, 6),
)
case_st = st.fixed_dictionaries(
    {
        "required_skill": st.sampled_from(SKILLS[:3]),
        "required_level": st.integers(1, 3),
        "language": st.sampled_from(LANGS),
    }
)
customer_st = st.fixed_dictionaries(
    {"churn_risk": st.floats(0.0, 1.0), "tier": st.sampled_from(["standard", "gold", "vip"])}
)
ROUTERS = {
    "uniform": lambda: make_policy("uniform"),
    "least-busy": LeastBusyPolicy,
    "rules": lambda: make_policy("rules"),
    "linucb": lambda: make_policy("linucb"),
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    agents=st.lists(agent_st, min_size=1, max_size=12),
    case=case_st,
    customer=customer_st,
    router=st.sampled_from(sorted(ROUTERS)),
    seed=st.integers(0, 2**32),
    last=st.integers(0, 12),
)
def test_a_routed_agent_always_has_the_skill_language_and_free_capacity(
    catalog: Catalog, agents, case, customer, router, seed, last
) -> None:
    actions = [Action(f"agent-{i}", "agent", f) for i, f in enumerate(agents)]
    request = {**case, "last_agent_id": f"agent-{last}"}
    ctx = Context("c-1", customer, request, "agent_routing")
    actions = with_continuity(ctx, actions)
    rules = catalog["agent_routing"].rules
    decision = decide_with_rules(ROUTERS[router](), rules, ctx, actions, seed)
    qualified = {a.id for a in actions if qualifies(a, ctx)}
    if decision.action is None:
        assert not qualified
        assert len(decision.excluded) == len(actions)
    else:
        assert qualifies(decision.action, ctx)
        assert decision.action.id in qualified
    assert {r.action_id for r in decision.ranking} == qualified
    allowed = {"skill", "language", "capacity", "retention_only"}
    assert {e.reason for e in decision.excluded} <= allowed
    assert {e.action_id for e in decision.excluded} == {a.id for a in actions} - qualified


def test_vw_router_never_routes_to_a_full_or_unskilled_agent(catalog: Catalog) -> None:
    vw = make_policy("vw-cb", seed=3, epsilon=0.5)
    rules = catalog["agent_routing"].rules
    ctx = Context("c-1", {}, {"required_skill": "technical", "required_level": 2,
                              "language": "es"}, "agent_routing")
    actions = [
        Action("full", "agent", {"skills": "technical", "level": 2, "languages": "es",
                                 "load": 3, "capacity": 3}),
        Action("junior", "agent", {"skills": "technical", "level": 1, "languages": "es",
                                   "load": 0, "capacity": 3}),
        Action("english", "agent", {"skills": "technical", "level": 2, "languages": "en",
                                    "load": 0, "capacity": 3}),
        Action("ok", "agent", {"skills": "technical,billing", "level": 2, "languages": "es,en",
                               "load": 2, "capacity": 3}),
    ]
    for seed in range(200):
        d = decide_with_rules(vw, rules, ctx, actions, seed)
        assert d.action is not None and d.action.id == "ok"
    assert {e.action_id: e.reason for e in d.excluded} == {
        "full": "capacity", "junior": "skill", "english": "language"}


def test_continuity_is_a_feature_from_the_request_or_the_customer() -> None:
    agents = [Action("a-1", "agent", {"load": 0, "capacity": 2}),
              Action("a-2", "agent", {"load": 0, "capacity": 2, "continuity": 1}),
              Action("no_contact", "none", {})]
    by_request = with_continuity(Context("c", {}, {"last_agent_id": "a-1"}), agents)
    assert [a.features.get("continuity") for a in by_request] == [1, 0, None]
    by_feature = with_continuity(Context("c", {"last_agent_id": "a-2"}, {}), agents)
    assert [a.features.get("continuity") for a in by_feature] == [0, 1, None]
    nobody = with_continuity(Context("c"), agents)
    assert [a.features.get("continuity") for a in nobody] == [0, 0, None]  # caller's 1 dropped


def test_continuity_is_not_a_hard_rule(catalog: Catalog) -> None:
    """The agent who served the customer last is still excluded when at capacity."""
    rules = catalog["agent_routing"].rules
    ctx = Context("c", {}, {"last_agent_id": "a-1"}, "agent_routing")
    agents = with_continuity(ctx, [
        Action("a-1", "agent", {"skills": "billing", "level": 1, "languages": "en",
                                "load": 2, "capacity": 2}),
        Action("a-2", "agent", {"skills": "billing", "level": 1, "languages": "en",
                                "load": 1, "capacity": 2}),
    ])
    eligible, excluded = rules.split(ctx, agents)
    assert [a.id for a in eligible] == ["a-2"]
    assert [(e.action_id, e.reason) for e in excluded] == [("a-1", "capacity")]


def test_least_busy_picks_the_lowest_occupancy() -> None:
    agents = [Action("a", "agent", {"load": 2, "capacity": 4}),
              Action("b", "agent", {"load": 1, "capacity": 5}),
              Action("c", "agent", {"load": 1, "capacity": 5}),
              Action("d", "agent", {"load": 0, "capacity": 0})]
    assert occupancy(agents[0]) == 0.5 and occupancy(agents[3]) == 1.0
    pmf = LeastBusyPolicy().pmf(Context("c"), agents)
    assert pmf.tolist() == [0.0, 0.5, 0.5, 0.0]


def test_routing_reward_weights_come_from_the_catalog(catalog: Catalog) -> None:
    reward = catalog["agent_routing"].rules.agent_routing.reward  # type: ignore[union-attr]
    assert reward == RoutingReward(resolved=1.0, handle_minute=-0.01, csat=0.25)
    assert reward(True, 10.0, 5.0) == pytest.approx(1.0 - 0.1 + 0.25)
    assert reward(False, 0.0, 1.0) == pytest.approx(-0.25)
    custom = RuleSet.from_config({"agent_routing": {"reward": {"resolved": 2, "csat": 0}}})
    assert custom.agent_routing.reward(True, 5.0, 4.0) == pytest.approx(2.0 - 0.05)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        ({"agent_routing": {"reward": {"speed": 1}}}, "unknown keys"),
        ({"agent_routing": {"reward": {"resolved": "lots"}}}, "must be numbers"),
        ({"escalation": {"channels": ["pigeon"]}}, "unknown channels"),
        ({"escalation": {"when": "always"}}, "unknown keys"),
        ({"escalation": {"churn_risk": "high"}}, "malformed"),
    ],
)
def test_bad_routing_and_escalation_config_fails_loudly(cfg, match) -> None:
    with pytest.raises(CatalogError, match=match):
        RuleSet.from_config(cfg)


# ---------------------------------------------------------------- escalation
def customer(**overrides) -> dict:
    base = {f"consent_{c}": True for c in CONTACT_CHANNELS}
    base.update(timezone="UTC", churn_risk=0.1, rapid_clicks=0, open_complaint=False)
    base.update(overrides)
    return base


NOON = 1_780_315_200.0  # 2026-06-01 12:00 UTC


def excluded(catalog: Catalog, dp: str, cust: dict, request=None) -> dict[str, str]:
    point = catalog[dp]
    _, ex = point.rules.split(Context("c", cust, request or {}, dp, NOON), point.actions)
    return {e.action_id: e.reason for e in ex}


@pytest.mark.parametrize(
    ("dp", "call"), [("default", "call_center_checkin"), ("onboarding", "call_center_welcome")]
)
def test_call_center_needs_an_escalation_signal(catalog: Catalog, dp: str, call: str) -> None:
    assert excluded(catalog, dp, customer()) == {call: "no_escalation_signal"}
    for signal in ({"churn_risk": 0.6}, {"rapid_clicks": 3}, {"open_complaint": True}):
        assert call not in excluded(catalog, dp, customer(**signal)), signal
    assert call in excluded(catalog, dp, customer(churn_risk=0.59, rapid_clicks=2))
    # a journey engine may pass the signal in the request context
    assert call not in excluded(catalog, dp, customer(), {"rapid_clicks": 5})
    # consent still holds when escalated
    got = excluded(catalog, dp, customer(rapid_clicks=9, consent_call_center=False))
    assert got[call] == "no_consent:call_center"


@pytest.mark.parametrize("dp", ["churn_risk", "billing_overdue", "cart_abandoned"])
def test_escalation_is_off_where_the_decision_point_is_the_signal(catalog: Catalog, dp) -> None:
    assert "no_escalation_signal" not in excluded(catalog, dp, customer()).values()


def test_escalation_is_configurable_per_decision_point() -> None:
    data = {
        "decision_points": {
            "default": {"actions": [{"id": "no_contact", "channel": "none"}]},
            "support": {
                "actions": [
                    {"id": "priority_chat", "channel": "in_app"},
                    {"id": "faq", "channel": "in_app"},
                    {"id": "call", "channel": "call_center"},
                ],
                "rules": {"escalation": {"channels": [], "action_ids": ["priority_chat"],
                                         "churn_risk": None, "rapid_clicks": 4,
                                         "open_complaint": False}},
            },
        }
    }
    point = parse_catalog(data)["support"]

    def ex(cust: dict) -> dict[str, str]:
        _, out = point.rules.split(Context("c", cust, {}, "support"), point.actions)
        return {e.action_id: e.reason for e in out}

    assert ex({"churn_risk": 0.99, "open_complaint": True}) == {
        "priority_chat": "no_escalation_signal"}
    assert ex({"rapid_clicks": 4}) == {}


def test_agent_candidates_set_continuity_as_with_continuity_does() -> None:
    from policies.routing import agent_candidates

    ctx = Context("c-1", {"last_agent_id": "a-2"}, {"required_skill": "billing"}, "agent_routing")
    sent = [Action("a-1", "agent", {"load": 0, "capacity": 2, "continuity": 1}),
            Action("a-2", "agent", {"load": 1, "capacity": 2}),
            Action("no_contact", "none", {})]
    assert agent_candidates(ctx, sent, None, []) == with_continuity(ctx, sent)

    class Roster:
        def agents(self) -> tuple[Action, ...]:
            return tuple(Action(f"a-{i}", "agent", {"load": 0, "capacity": 2, "continuity": 0})
                         for i in range(1, 4))

    got = agent_candidates(ctx, None, Roster(), [])
    assert {a.id: a.features["continuity"] for a in got} == {"a-1": 0, "a-2": 1, "a-3": 0}
    default = [Action("x", "agent", {})]
    assert agent_candidates(ctx, None, None, default) is default  # no roster: the catalog


def test_the_case_is_read_per_request_even_interleaved(catalog: Catalog) -> None:
    rules = catalog["agent_routing"].rules
    case = {"required_skill": "billing", "required_level": 1, "language": "en"}
    vip = Context("c-vip", {"tier": "vip"}, case, "agent_routing")
    plain = Context("c-plain", {"tier": "standard", "churn_risk": 0.1}, case, "agent_routing")
    spanish = Context("c-es", {}, {**case, "language": "es"}, "agent_routing")
    agent = Action("a", "agent", {"skills": "billing", "level": 1, "languages": "en",
                                  "load": 0, "capacity": 1})
    for _ in range(3):
        assert rules.reason(vip, agent, None) == "retention_only"
        assert rules.reason(plain, agent, None) is None
        assert rules.reason(spanish, agent, None) == "language"
