"""Off-policy evaluation that is honest about itself: no estimate without support, the
support and overlap diagnostics, biased estimators labelled, no overflow on large
values, and a gate that never decides on an estimate it cannot trust."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ope_table import MU, QL, QT, R

from training.ope import (
    DM,
    DR,
    ESTIMATORS,
    IPS,
    MIN_ESS,
    SNIPS,
    ClippedIPS,
    Evaluation,
    SwitchDR,
    decision_problem,
    diagnose,
    evaluate,
)
from training.ope.estimate import kish, mean_ci
from training.train import gate


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


def _candidate_and_champion(pi: np.ndarray, n: int = 4000) -> dict[str, Evaluation]:
    rng = np.random.default_rng(1)
    r = (rng.random(n) < 0.3).astype(float)
    mu = np.full(n, 0.2)
    return {"candidate": evaluate(r, mu, pi), "champion": evaluate(r, mu, mu)}


def test_the_gate_never_passes_on_a_null_or_untrustworthy_estimate() -> None:
    n = 4000
    verdict = gate(_candidate_and_champion(np.zeros(n)), n, 500, True)
    assert not verdict.passed and verdict.candidate_low is None
    assert "candidate: no snips estimate (no support" in verdict.summary()
    # one supported event: a value, no interval
    pi = np.zeros(n)
    pi[0] = 1.0
    verdict = gate(_candidate_and_champion(pi), n, 500, True)
    assert not verdict.passed and "one supported event" in verdict.summary()
    # a handful of supported events: an interval, but not a meaningful one
    pi[:10] = 1.0
    verdict = gate(_candidate_and_champion(pi), n, 500, True)
    assert not verdict.passed and "effective sample size" in verdict.summary()


def test_the_gate_never_uses_a_biased_estimator_as_its_bound() -> None:
    n = 4000
    ope = _candidate_and_champion(np.full(n, 0.2))
    for who in ope:  # only the biased estimators left: the gate must refuse, not use them
        ope[who] = Evaluation({"snips": ClippedIPS().estimate(
            np.ones(n), np.full(n, 0.2), np.full(n, 0.2)
        )}, ope[who].diagnostics)
    verdict = gate(ope, n, 500, True)
    assert not verdict.passed and "biased quantity" in verdict.summary()
