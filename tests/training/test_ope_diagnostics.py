"""Off-policy evaluation that is honest about itself: no estimate without support, the
support and overlap diagnostics, biased estimators labelled, no overflow on large
values, and a gate that never decides on an estimate it cannot trust."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

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
    MIN_ESS,
    SNIPS,
    ClippedIPS,
    SwitchDR,
    decision_problem,
    diagnose,
    evaluate,
    policy_inputs,
)
from training.ope.estimate import kish, mean_ci
from training.reward_model import RidgeRewardModel
from training.train import TrainConfig, paired_gate


def test_no_support_gives_no_estimate_with_a_reason_and_a_warning() -> None:
    out = evaluate(R, MU, [0.0] * 4, QL, QT)
    for name in ("ips", "snips", "clipped_ips", "dr", "switch_dr"):
        est = out[name]
        assert est.value is None and est.ci_low is None and est.ci_high is None, name
        assert est.reason is not None and est.reason.startswith("no support"), name
        assert est.as_dict()["value"] is None
    assert out["dm"].value == pytest.approx(sum(QT) / 4)  # the reward model still answers
    diag = out.diagnostics
    assert (diag.support, diag.supported, diag.max_weight, diag.ess) == (0.0, 0, 0.0, 0.0)
    assert len(diag.warnings) == 1 and diag.warnings[0].startswith("no support")


def test_one_supported_event_gives_a_value_but_no_interval() -> None:
    snips = SNIPS().estimate(R, MU, [0.5, 0.0, 0.0, 0.0])
    assert snips.value == pytest.approx(1.0)  # the one supported event's reward
    assert snips.ci_low is None and snips.ci_high is None
    assert snips.reason is not None and "one supported event" in snips.reason


def test_diagnostics_figures_by_hand() -> None:
    pi = [0.5, 0.0, 0.5, 0.6]  # w = [2, 0, 1, 3]
    diag = diagnose(MU, pi)
    assert diag.n == 4 and diag.supported == 3 and diag.support == pytest.approx(0.75)
    assert diag.max_weight == pytest.approx(3.0)
    assert diag.mean_weight == pytest.approx(1.5)
    assert diag.ess == pytest.approx(36 / 14)
    assert diag.ess < MIN_ESS and "effective sample size 2.6 of 4" in diag.warnings[0]
    assert set(diag.as_dict()) == {
        "n", "supported", "support", "max_weight", "mean_weight", "ess"
    }


def test_enough_overlap_gives_no_warning() -> None:
    rng = np.random.default_rng(0)
    mu = np.full(2000, 0.2)
    pi = rng.uniform(0.1, 0.4, 2000)
    diag = evaluate(rng.random(2000), mu, pi).diagnostics
    assert diag.warnings == () and diag.ess > 1000 and diag.support == 1.0


def test_clipped_ips_and_switch_dr_are_labelled_biased_with_what_they_altered() -> None:
    pi = [0.5, 0.0, 0.5, 0.6]  # w = [2, 0, 1, 3]
    clipped = ClippedIPS(max_weight=2.0).estimate(R, MU, pi)
    assert clipped.biased and clipped.note is not None and "1 of 4 weights clipped" in clipped.note
    switch = SwitchDR(tau=1.5).estimate(R, MU, pi, QL, QT)
    assert switch.biased and switch.note is not None and "2 of 4 events switched" in switch.note
    for cls in (IPS, SNIPS, DR, DM):
        assert not cls().estimate(R, MU, pi, QL, QT).biased
    assert {k for k, cls in ESTIMATORS.items() if cls.biased} == {"clipped_ips", "switch_dr"}


def test_huge_weights_and_terms_do_not_overflow() -> None:
    # Kish's ESS of two weights of 1e200: (Σw)² and Σw² overflow unless scaled
    assert kish(np.array([1e200, 1e200])) == pytest.approx(2.0)
    assert kish(np.array([1e300, 0.0, 1e300, 1e300])) == pytest.approx(3.0)
    est = mean_ci(np.array([1e200, -1e200, 3e200]), 0.05, 3.0)
    assert est.value == pytest.approx(1e200)
    for v in (est.value, est.ci_low, est.ci_high):
        assert v is not None and math.isfinite(v)
    # at the input limits (weight 1e100, reward 1e100) every figure stays finite
    zeros = [0.0, 0.0, 0.0]
    out = evaluate([1e100, -1e100, 5.0], [1e-100, 1e-100, 0.5], [1.0, 1.0, 0.5], zeros, zeros)
    for est in out.values():
        assert all(math.isfinite(x) for x in (est.value, est.ci_low, est.ci_high, est.ess))
    assert math.isfinite(out.diagnostics.ess) and out.diagnostics.max_weight == 1e100
    # subnormal target probabilities: the squares would vanish unless scaled up
    tiny = evaluate([1.0, 0.0, 1.0], [0.5] * 3, [1e-310, 1e-310, 2e-310])
    assert tiny["snips"].value == pytest.approx(0.75)
    assert tiny["ips"].ess == pytest.approx(16 / 6) == tiny.diagnostics.ess


def test_scaling_leaves_finite_results_bit_identical() -> None:
    """The scaled forms against the textbook formulas: equal to the last bit."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        n = int(rng.integers(5, 500))
        mu, pi = rng.uniform(0.05, 1, n), rng.uniform(0, 1, n)
        r = rng.normal(size=n) * 10.0 ** int(rng.integers(-3, 4))
        w = pi / mu
        ips = IPS().estimate(r, mu, pi)
        assert ips.value == float((w * r).mean())
        z = 1.959963984540054
        assert ips.ci_high == pytest.approx(ips.value + z * (w * r).std(ddof=1) / math.sqrt(n))
        snips = SNIPS().estimate(r, mu, pi)
        assert snips.value == float(np.sum(w * r) / np.sum(w))
        assert ips.ess == float(np.sum(w)) ** 2 / float(np.sum(w * w))


def test_decision_problem_names_what_makes_an_estimate_unusable() -> None:
    good = evaluate(np.ones(200), np.full(200, 0.5), np.full(200, 0.5))
    assert decision_problem(good, "snips", good.diagnostics) is None
    nosup = evaluate(np.ones(200), np.full(200, 0.5), np.zeros(200))
    assert "no support" in (decision_problem(nosup, "snips", nosup.diagnostics) or "")
    assert "biased" in (decision_problem(good, "clipped_ips", good.diagnostics) or "")
    tiny = evaluate([1.0, 0.0, 1.0], [0.5] * 3, [0.5] * 3)
    assert "effective sample size" in (decision_problem(tiny, "ips", tiny.diagnostics) or "")
    assert decision_problem(good, "dr", None) == "no dr estimate"


A, B = Action("a", "email", {"category": "x"}), Action("b", "push", {"category": "y"})
CFG = TrainConfig(min_events=200)  # the default minimum: 200 events and 200 effective


@dataclass
class _Fixed(BasePolicy):
    """A test policy (fake, for a unit test): action ``b`` always, except ``a`` on the
    contexts flagged ``pick_a`` (its pmf is exactly 0/1, no exploration floor)."""

    kind = "fixed"

    def raw_pmf(self, context: Context, actions: Sequence[Action]) -> list[float]:
        pick = 0 if context.customer.get("pick_a") else 1
        return [1.0 if i == pick else 0.0 for i in range(len(actions))]


@dataclass
class _Uniform(BasePolicy):
    kind = "uniform-test"

    def raw_pmf(self, context: Context, actions: Sequence[Action]) -> list[float]:
        return [1.0 / len(actions)] * len(actions)


def _batch(chosen, mu, rewards, pick_a=()) -> LoggedBatch:
    n = len(chosen)
    flagged = set(pick_a)
    ctxs = [Context(f"c{i}", {"segment": "s", "pick_a": int(i in flagged)}) for i in range(n)]
    return LoggedBatch(ctxs, [(A, B)] * n, np.asarray(chosen), np.asarray(mu, float),
                       np.asarray(rewards, float))


def _train(n: int = 400) -> LoggedBatch:
    """Uniform-logged training rows where ``b`` pays 1 and ``a`` pays 0: the reward
    model fitted on them favours ``b``, so its q-values alone would favour the candidate."""
    chosen = np.arange(n) % 2
    return _batch(chosen, np.full(n, 0.5), chosen.astype(float))


def test_the_gate_never_passes_on_a_null_or_untrustworthy_estimate() -> None:
    n = 4000
    # no support: every held-out event logged ``a``, the candidate gives ``a`` probability 0
    holdout = _batch(np.zeros(n, int), np.full(n, 0.5), np.zeros(n))
    dr = paired_gate(_Fixed(), _Uniform(), holdout, _train(), CFG, True)
    assert dr.estimator == "dr" and not dr.passed and dr.paired.ess == 0.0
    # the reward model's q-values alone clear the minimum lift: the support rule refuses
    assert dr.paired.ci_low > 0.1
    assert f"only {n} held-out events worth 0 effective" in dr.summary()
    snips = paired_gate(_Fixed(), _Uniform(), holdout, _train(10), CFG, True)
    assert snips.estimator == "snips" and not snips.passed
    assert "not estimable" in snips.summary() and math.isnan(snips.paired.ci_low)
    # untrustworthy overlap: the candidate supports 10 of the 4000 events, which paid 1
    few = range(10)
    rewards = np.zeros(n)
    rewards[list(few)] = 1.0
    holdout = _batch(np.zeros(n, int), np.full(n, 0.5), rewards, pick_a=few)
    for train in (_train(), _train(10)):
        verdict = paired_gate(_Fixed(), _Uniform(), holdout, train, CFG, True)
        p = verdict.paired
        assert p.ess == pytest.approx(10.0, abs=1e-9) and p.ess < CFG.min_events
        assert p.ci_low > 0.0  # the interval alone would promote on these 10 events
        assert not verdict.passed, verdict.summary()
        assert f"only {n} held-out events worth 10 effective" in verdict.summary()


def test_the_gate_never_uses_a_biased_estimator_as_its_bound() -> None:
    """Weights of 20 (``b`` logged with probability 0.05) that clipped IPS (at 10) and
    Switch-DR (tau 10) would alter: the gate's difference is the unclipped DR one (with a
    reward model) or SNIPS, never either biased quantity."""
    n = 4000
    rng = np.random.default_rng(4)
    chosen = (rng.random(n) < 0.05).astype(int)
    mu = np.where(chosen == 1, 0.05, 0.95)
    rewards = np.where(chosen == 1, rng.random(n) < 0.6, rng.random(n) < 0.3).astype(float)
    holdout, train = _batch(chosen, mu, rewards), _train()
    dr = paired_gate(_Fixed(), _Uniform(), holdout, train, CFG, True)
    snips = paired_gate(_Fixed(), _Uniform(), holdout, _train(10), CFG, True)
    assert (dr.estimator, snips.estimator) == ("dr", "snips")
    model = RidgeRewardModel().fit(train)
    inputs = [policy_inputs(p, holdout, model) for p in (_Fixed(), _Uniform())]

    def diff(est) -> float:
        c, b = (est.estimate(i.rewards, i.logging_probs, i.target_probs, i.q_logged,
                             i.q_target).value for i in inputs)
        return c - b

    assert dr.paired.diff == pytest.approx(diff(DR()), abs=1e-9)
    assert snips.paired.diff == pytest.approx(diff(SNIPS()), abs=1e-9)
    for biased in (ClippedIPS(), SwitchDR()):  # they differ here: the check can fail
        assert abs(diff(biased) - dr.paired.diff) > 1e-3, biased
        assert abs(diff(biased) - snips.paired.diff) > 1e-3, biased
