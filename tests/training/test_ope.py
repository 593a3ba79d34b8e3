"""Off-policy estimators against a hand computation on a tiny table, and their input checks."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
from ope_table import MU, QL, QT, R

from policies.base import BasePolicy
from policies.types import Action, Context, LoggedBatch
from training.ope import (
    DM,
    DR,
    ESTIMATORS,
    IPS,
    SNIPS,
    ClippedIPS,
    EstimatorInputError,
    MissingRewardModelError,
    RidgeRewardModel,
    SwitchDR,
    evaluate,
    evaluate_policy,
)

# Four logged rounds. w = pi / mu = [2, 0, 1, 3].
PI = [0.5, 0.0, 0.5, 0.6]
Z = 1.959963984540054


def _half(terms: Sequence[float]) -> float:
    """Hand-rolled 1.96 · sample sd / sqrt(n)."""
    n = len(terms)
    mean = sum(terms) / n
    var = sum((t - mean) ** 2 for t in terms) / (n - 1)
    return Z * math.sqrt(var / n)


def test_ips_matches_hand_computation() -> None:
    terms = [2 * 1.0, 0 * 0.0, 1 * 1.0, 3 * 0.5]  # w·r = [2, 0, 1, 1.5]
    est = IPS().estimate(R, MU, PI)
    assert est.value == pytest.approx(4.5 / 4)
    assert est.ci_high - est.value == pytest.approx(_half(terms))
    assert est.ci_low == pytest.approx(est.value - _half(terms))
    assert est.ess == pytest.approx((2 + 0 + 1 + 3) ** 2 / (4 + 0 + 1 + 9))  # 36/14
    assert est.n == 4


def test_snips_matches_hand_computation_with_delta_method_interval() -> None:
    est = SNIPS().estimate(R, MU, PI)
    value = 4.5 / 6.0  # Σ w r / Σ w
    assert est.value == pytest.approx(value)
    w = [2.0, 0.0, 1.0, 3.0]
    wbar = 1.5
    var = sum((wi * (ri - value)) ** 2 for wi, ri in zip(w, R, strict=True)) / 4 / wbar**2 / 4
    assert est.ci_high - est.value == pytest.approx(Z * math.sqrt(var))


def test_dm_and_dr_match_hand_computation() -> None:
    dm = DM().estimate(R, MU, PI, QL, QT)
    assert dm.value == pytest.approx(sum(QT) / 4)
    assert dm.ess == 4
    dr_terms = [
        0.7 + 2 * (1.0 - 0.8),
        0.2 + 0 * (0.0 - 0.1),
        0.5 + 1 * (1.0 - 0.6),
        0.3 + 3 * (0.5 - 0.4),
    ]  # [1.1, 0.2, 0.9, 0.6]
    dr = DR().estimate(R, MU, PI, QL, QT)
    assert dr.value == pytest.approx(sum(dr_terms) / 4)
    assert dr.ci_high - dr.value == pytest.approx(_half(dr_terms))


def test_clipped_ips_and_switch_dr_apply_their_thresholds() -> None:
    clipped = ClippedIPS(max_weight=2.0).estimate(R, MU, PI)
    assert clipped.value == pytest.approx((2 * 1.0 + 0 + 1 * 1.0 + 2 * 0.5) / 4)
    switch = SwitchDR(tau=2.5).estimate(R, MU, PI, QL, QT)  # round 4 (w=3) falls back to DM
    assert switch.value == pytest.approx((1.1 + 0.2 + 0.9 + 0.3) / 4)
    # without clipping the estimators equal their unclipped parents
    assert ClippedIPS(max_weight=1e9).estimate(R, MU, PI).value == IPS().estimate(R, MU, PI).value
    assert SwitchDR(tau=1e9).estimate(R, MU, PI, QL, QT).value == pytest.approx(
        DR().estimate(R, MU, PI, QL, QT).value
    )


def test_registry_names_and_evaluate_runs_model_free_ones_without_q() -> None:
    assert {"ips", "snips", "dm", "dr"} <= set(ESTIMATORS)
    for name, cls in ESTIMATORS.items():
        assert cls.name == name
        assert "References:" in (cls.__doc__ or "")
    out = evaluate(R, MU, PI)
    assert set(out) == {"ips", "snips", "clipped_ips"}
    assert set(evaluate(R, MU, PI, QL, QT)) == set(ESTIMATORS)


def test_interval_level_follows_alpha() -> None:
    wide = IPS().estimate(R, MU, PI, alpha=0.01)
    narrow = IPS().estimate(R, MU, PI, alpha=0.2)
    assert wide.ci_high - wide.ci_low > narrow.ci_high - narrow.ci_low


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rewards": [1.0, float("nan")]}, "rewards: NaN or infinite in 1 of 2 rows"),
        ({"logging_probs": [0.0, 0.5]}, r"logging_probs: outside \(0, 1\] in 1 of 2 rows"),
        ({"logging_probs": [1.5, 1.5]}, r"logging_probs: outside \(0, 1\] in 2 of 2 rows"),
        ({"logging_probs": [-0.1, 0.5]}, r"logging_probs: outside \(0, 1\] in 1 of 2"),
        ({"logging_probs": [1e-320, 0.5]}, r"logging_probs: below 1e-100 in 1 of 2"),
        ({"rewards": [1e200, 0.5]}, r"rewards: magnitude above 1e\+100 in 1 of 2"),
        ({"target_probs": [1.2, 0.5]}, r"target_probs: outside \[0, 1\] in 1 of 2"),
        ({"target_probs": [0.5]}, "target_probs: length 1 does not match"),
        ({"rewards": []}, "at least one logged round"),
        ({"q_logged": [0.1, 0.2]}, "give both q_logged and q_target"),
        ({"alpha": 1.5}, "alpha must lie"),
        ({"rewards": [[1.0, 2.0]]}, "expected shape"),
    ],
    ids=[
        "nan",
        "zero-prob",
        "prob>1",
        "negative-prob",
        "subnormal-prob",
        "huge-reward",
        "target>1",
        "length",
        "empty",
        "half-q",
        "alpha",
        "2d",
    ],
)
def test_bad_inputs_raise_specific_error(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {
        "rewards": [1.0, 0.0],
        "logging_probs": [0.5, 0.5],
        "target_probs": [0.5, 0.5],
    }
    args.update(kwargs)
    with pytest.raises(EstimatorInputError, match=match) as info:
        IPS().estimate(**args)  # type: ignore[arg-type]
    assert info.value.http_status == 422
    assert info.value.field


def test_model_based_estimators_demand_a_reward_model() -> None:
    for cls in (DM, DR, SwitchDR):
        with pytest.raises(MissingRewardModelError, match="needs q_logged and q_target"):
            cls().estimate(R, MU, PI)


class _FirstAction(BasePolicy):
    """A deterministic test policy: always the first action (fake, for a unit test)."""

    kind = "first"

    def raw_pmf(self, context: Context, actions: Sequence[Action]) -> list[float]:
        return [1.0] + [0.0] * (len(actions) - 1)


def test_evaluate_policy_reads_target_probabilities_from_pmf() -> None:
    acts = (Action("a", "email", {"category": "x"}), Action("b", "push", {"category": "x"}))
    ctxs = [Context(f"c{i}", {"segment": "s"}) for i in range(4)]
    batch = LoggedBatch(
        ctxs, [acts] * 4, np.array([0, 1, 0, 1]), np.full(4, 0.5), np.array([1.0, 5.0, 0.0, 5.0])
    )
    out = evaluate_policy(_FirstAction(), batch)
    # pi = [1, 0, 1, 0]; w = [2, 0, 2, 0] → IPS = (2·1 + 0 + 2·0 + 0) / 4, SNIPS = 2 / 4
    assert out["ips"].value == pytest.approx(0.5)
    assert out["snips"].value == pytest.approx(0.5)
    model = RidgeRewardModel().fit(batch)
    q = model(ctxs[0], acts)
    assert q.shape == (2,) and q[1] > q[0]  # b was rewarded 5, a on average 0.5
    full = evaluate_policy(_FirstAction(), batch, reward_model=model)
    assert full["dm"].value == pytest.approx(q[0], rel=1e-6)
