"""The shipped catalog, the featuriser, and clear errors for bad input to the library."""

from __future__ import annotations

import math

import numpy as np
import pytest

from policies.catalog import Catalog, load_catalog, parse_catalog
from policies.draw import apply_floor, draw, seed_from_event_id, uniform_from_seed
from policies.errors import (
    CatalogError,
    DuplicateActionError,
    EmptyActionsError,
    InvalidFeatureError,
    InvalidParameterError,
    ModelLoadError,
    UnknownChannelError,
    UnknownDecisionPointError,
    UnknownPolicyError,
)
from policies.featurize import MISSING, DenseFeaturizer, shared_tokens
from policies.registry import load_policy, make_policy
from policies.types import CONTACT_CHANNELS, Action, Context
from policies.vw.policy import action_line, cost_from_reward, shared_line


def test_shipped_catalog_has_the_journeys(catalog: Catalog) -> None:
    for name in ("default", "cart_abandoned", "churn_risk", "onboarding", "billing_overdue"):
        point = catalog[name]
        assert len(point.actions) >= 6
        assert {a.channel for a in point.actions} >= set(CONTACT_CHANNELS)
        assert "no_contact" in {a.id for a in point.actions}
        assert point.reward_window_hours > 0


def test_unknown_decision_point(catalog: Catalog) -> None:
    with pytest.raises(UnknownDecisionPointError, match="unknown decision point 'nope'"):
        catalog["nope"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "decision_points"),
        ({"decision_points": {"x": {"actions": []}}}, "'default' decision point is required"),
        (
            {"decision_points": {"default": {"actions": [{"id": "a", "channel": "fax"}]}}},
            "unknown channel 'fax'",
        ),
        (
            {"decision_points": {"default": {"actions": [{"id": "a", "channel": "sms"}] * 2}}},
            "duplicate action id",
        ),
        ({"decision_points": {"default": {"rules": {"colour": 1}}}}, "unknown keys"),
        ({"decision_points": {"default": {"journey_priority": ["ghost"]}}}, "journey_priority"),
        (
            {"decision_points": {"default": {"rules": {"quiet_hours": {"start": 25, "end": 3}}}}},
            "hours 0-23",
        ),
    ],
)
def test_malformed_catalogs(data: dict, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        parse_catalog(data)


def test_catalog_file_errors(tmp_path) -> None:
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("decision_points: [unclosed")
    with pytest.raises(CatalogError, match="invalid YAML"):
        load_catalog(bad)


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: Action("a", "fax"), UnknownChannelError, "unknown channel 'fax'"),
        (lambda: Action("", "sms"), Exception, "non-empty"),
        (lambda: Action("a", "sms", {"x": float("nan")}), InvalidFeatureError, "finite"),
        (
            lambda: Action("a", "sms", {"x": [1, 2]}),
            InvalidFeatureError,
            "string, number or boolean",
        ),
        (lambda: Context("c", {"ltv": float("inf")}), InvalidFeatureError, r"customer\.ltv"),
        (lambda: Context("c", {}, {"cart": float("nan")}), InvalidFeatureError, r"context\.cart"),
        (lambda: make_policy("thompson"), UnknownPolicyError, "unknown policy kind 'thompson'"),
        (
            lambda: make_policy("uniform", exploration_floor=1.5),
            InvalidParameterError,
            "exploration_floor",
        ),
        (
            lambda: make_policy("vw-cb", exploration="greedy"),
            InvalidParameterError,
            "exploration must be",
        ),
        (lambda: make_policy("linucb", alpha=-1), InvalidParameterError, "alpha"),
        (lambda: make_policy("neural", n_heads=0), InvalidParameterError, "n_heads"),
        (lambda: make_policy("uniform", colour="red"), InvalidParameterError, "colour"),
        (lambda: load_policy(b"not a policy"), ModelLoadError, "magic"),
    ],
)
def test_bad_input_raises_specific_errors(build, error, message) -> None:
    with pytest.raises(error, match=message):
        build()


@pytest.mark.parametrize("kind", ["uniform", "vw-cb"])
def test_bad_action_lists(kind: str) -> None:
    policy = make_policy(kind)
    ctx = Context("c")
    with pytest.raises(EmptyActionsError, match="at least one"):
        policy.decide(ctx, [], seed=1)
    with pytest.raises(DuplicateActionError, match="duplicate action id 'a'"):
        policy.decide(ctx, [Action("a", "sms"), Action("a", "email")], seed=1)


@pytest.mark.parametrize("kind", ["vw-cb", "linucb", "neural"])
def test_corrupt_payload_is_a_model_load_error(kind: str) -> None:
    saved = make_policy(kind).save()
    with pytest.raises(ModelLoadError, match="checksum"):
        load_policy(saved[:-40] + b"\x00" * 40)
    with pytest.raises(ModelLoadError):
        load_policy(saved[:20])


def test_seeded_draws_are_reproducible_and_uniform() -> None:
    assert seed_from_event_id("e-1") == seed_from_event_id("e-1") != seed_from_event_id("e-2")
    us = np.array([uniform_from_seed(s) for s in range(20_000)])
    assert us.min() >= 0.0 and us.max() < 1.0
    assert abs(us.mean() - 0.5) < 0.01
    pmf = [0.1, 0.0, 0.6, 0.3]
    counts = np.bincount([draw(pmf, s) for s in range(20_000)], minlength=4) / 20_000
    assert counts[1] == 0.0
    assert np.allclose(counts, pmf, atol=0.015)


def test_floor_keeps_every_action_above_floor_over_n() -> None:
    probs = apply_floor([1.0, 0.0, 0.0, 0.0], 0.2)
    assert min(probs) == pytest.approx(0.05) and math.fsum(probs) == pytest.approx(1.0, abs=1e-12)
    assert apply_floor([float("nan"), 1.0], 0.0) == [0.5, 0.5]


def test_featuriser_handles_missing_values_explicitly() -> None:
    ctx = Context(
        "c", {"segment": None, "ltv": 100.0, "vip": True}, {"page": "cart"}, "cart_abandoned"
    )
    tokens = dict(shared_tokens(ctx))
    assert tokens[f"c.segment={MISSING}"] == 1.0
    assert tokens["c.ltv"] == pytest.approx(math.log1p(100.0))
    assert tokens["c.vip=true"] == 1.0 and tokens["r.page=cart"] == 1.0
    f = DenseFeaturizer()
    a = f.joint(ctx, [Action("x", "sms", {"offer": "d"}), Action("y", "email")])
    b = f.joint(ctx, [Action("x", "sms", {"offer": "d"}), Action("y", "email")])
    assert a.shape == (2, f.joint_dim) and np.array_equal(a, b)
    assert not np.array_equal(a[0], a[1])


def test_vw_lines_are_sanitised_and_cost_is_negative_reward() -> None:
    ctx = Context("c", {"segment": "a b|c:d"}, {"note": "x y"})
    line = shared_line(ctx)
    assert line.startswith("shared |c ") and "|r " in line
    assert "a_b_c_d" in line and line.count("|") == 2
    assert action_line(Action("id 1", "sms", {"offer": "big sale"})).startswith("|a id=id_1:1 ")
    assert cost_from_reward(2.5) == -2.5


def test_vw_cached_examples_predict_like_fresh_ones() -> None:
    """The VW adapter reuses parsed action examples for prediction; that must not change
    any prediction, before or after learning."""
    rng = np.random.default_rng(4)
    policy = make_policy("vw-cb", exploration="softmax", seed=2)
    actions = [Action(f"a{i}", "email", {"offer": f"o{i % 3}", "pct": i}) for i in range(6)]
    contexts = [
        Context("c", {"x": float(rng.random()), "seg": str(rng.integers(3))}) for _ in range(30)
    ]
    for step in range(3):
        for ctx in contexts:
            cached = policy.raw_pmf(ctx, actions)
            fresh = policy._ws.predict_one(policy._examples(ctx, actions))
            expected = [0.0] * len(actions)
            for index, prob in fresh:
                expected[index] = prob
            assert cached == expected, step
        chosen = rng.integers(0, 6, 30)
        from policies.types import LoggedBatch

        policy.learn(
            LoggedBatch(contexts, [actions] * 30, chosen, np.full(30, 1 / 6), rng.random(30))
        )


def test_fused_shared_hashing_equals_token_hashing() -> None:
    f = DenseFeaturizer()
    ctx = Context(
        "c",
        {"seg": "a", "ltv": 120.5, "n": 3, "zero": 0, "flag": False, "none": None, "neg": -2.0},
        {"page": "cart", "cart_value": 10.0},
        "cart_abandoned",
    )
    for _ in range(2):  # cold and memoised
        assert np.allclose(f.shared(ctx), f._vector(shared_tokens(ctx), f.shared_dim))


def test_timestamps_become_ages_at_decision_time() -> None:
    now = 1_780_000_000.0
    ctx = Context(
        "c",
        {"last_contact_email_ts": now - 2 * 86_400.0, "last_contact_sms_ts": 0.0, "n": 3},
        {},
        "default",
        now,
    )
    tokens = dict(shared_tokens(ctx))
    assert tokens["c.last_contact_email_ts"] == pytest.approx(math.log1p(2.0))
    assert tokens["c.last_contact_sms_ts"] == pytest.approx(-math.log1p(1.0))  # never
    assert "last_contact_email_ts:1.09861" in shared_line(ctx)
    f = DenseFeaturizer()
    assert np.allclose(f.shared(ctx), f._vector(shared_tokens(ctx), f.shared_dim))


def test_feature_check_fast_path_agrees_with_the_per_feature_rules() -> None:
    """The set-based fast path and the per-feature loop accept and refuse alike."""
    import numpy as np

    from policies.types import check_features

    ok = [
        {"a": 1, "b": "x", "c": True, "d": None, "e": 2.5},
        {"a": 1e308, "b": 1e308},  # the finite sum overflows: the loop accepts
        {"a": np.float64(0.5), "b": 3},  # float subclasses are accepted
        {},
    ]
    for features in ok:
        check_features(features, "customer")
    bad = [
        ({"a": 1.0, "b": float("nan")}, r"customer\.b"),
        ({"a": float("-inf")}, r"customer\.a"),
        ({"": 1}, "non-empty"),
        ({1: 1}, "non-empty"),
        ({"a": [1]}, "string, number or boolean"),
        ({"a": np.int64(3)}, "string, number or boolean"),
    ]
    for features, message in bad:
        with pytest.raises(InvalidFeatureError, match=message):
            check_features(features, "customer")
