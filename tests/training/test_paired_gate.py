"""The paired difference candidate − champion and the gate built on it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.gate import gate
from training.ope import DR, SNIPS, PolicyInputs
from training.paired import events_needed, paired_difference, paired_dr, paired_snips


def _inputs(r, mu, pi, ql=None, qt=None) -> PolicyInputs:
    return PolicyInputs(np.asarray(r, float), np.asarray(mu, float), np.asarray(pi, float), ql, qt)


@pytest.fixture
def logged():
    """Uniform-logged rounds of a 5-action Bernoulli bandit with 4 segments, a reward
    model that is right on average, and two target policies' probabilities."""
    rng = np.random.default_rng(3)
    n = 3000
    table = rng.uniform(0.1, 0.6, size=(4, 5))
    s, a = rng.integers(0, 4, n), rng.integers(0, 5, n)
    r = (rng.random(n) < table[s, a]).astype(float)
    mu = np.full(n, 0.2)
    best = table.argmax(axis=1)[s]
    pi_c = np.where(a == best, 0.9, 0.025)  # 0.9 + 4 * 0.025 = 1
    pi_b = np.full(n, 0.2)
    qhat = table[s] + rng.normal(0, 0.05, size=(n, 5))
    ql = qhat[np.arange(n), a]
    qt_c = 0.9 * qhat[np.arange(n), table.argmax(axis=1)[s]] + 0.025 * (
        qhat.sum(axis=1) - qhat[np.arange(n), table.argmax(axis=1)[s]]
    )
    qt_b = qhat.mean(axis=1)
    truth = float(
        np.mean(0.9 * table.max(axis=1)[s] + 0.025 * (table.sum(axis=1)[s] - table.max(axis=1)[s]))
    ) - float(np.mean(table.mean(axis=1)[s]))
    cand = _inputs(r, mu, pi_c, ql, qt_c)
    champ = _inputs(r, mu, pi_b, ql, qt_b)
    return cand, champ, truth


def test_paired_dr_is_the_difference_of_the_dr_estimates_with_a_narrower_interval(logged):
    cand, champ, truth = logged
    p = paired_dr(cand, champ)
    c = DR().estimate(
        cand.rewards, cand.logging_probs, cand.target_probs, cand.q_logged, cand.q_target
    )
    b = DR().estimate(
        champ.rewards, champ.logging_probs, champ.target_probs, champ.q_logged, champ.q_target
    )
    assert p.diff == pytest.approx(c.value - b.value, abs=1e-12)
    # the paired interval is narrower than the sum of the two half-widths (shared noise)
    assert (p.ci_high - p.ci_low) < 0.8 * ((c.ci_high - c.ci_low) + (b.ci_high - b.ci_low))
    assert p.ci_low < truth < p.ci_high
    assert p.ci_low > 0  # a clearly better candidate is recognised
    assert p.events_needed == 0


def test_paired_snips_matches_the_ratio_difference_and_its_delta_method_variance(logged):
    cand, champ, truth = logged
    p = paired_snips(cand, champ)
    c = SNIPS().estimate(cand.rewards, cand.logging_probs, cand.target_probs)
    b = SNIPS().estimate(champ.rewards, champ.logging_probs, champ.target_probs)
    assert p.diff == pytest.approx(c.value - b.value, abs=1e-12)
    # by hand: influence of each event on each ratio, their difference's mean square / n
    r, n = cand.rewards, len(cand.rewards)
    wc, wb = cand.target_probs / cand.logging_probs, champ.target_probs / champ.logging_probs
    infl = wc * (r - c.value) / wc.mean() - wb * (r - b.value) / wb.mean()
    assert p.se == pytest.approx(math.sqrt(np.mean(infl**2) / n), rel=1e-12)
    assert p.ci_low < truth < p.ci_high
    assert (
        paired_difference(
            _inputs(r, cand.logging_probs, cand.target_probs),
            _inputs(r, champ.logging_probs, champ.target_probs),
        ).estimator
        == "snips"
    )
    assert paired_difference(cand, champ).estimator == "dr"


def test_a_policy_against_itself_is_exactly_zero_and_never_passes(logged):
    cand, _, _ = logged
    p = paired_dr(cand, cand)
    assert (p.diff, p.ci_low, p.ci_high, p.events_needed) == (0.0, 0.0, 0.0, None)
    assert not gate(p, len(cand.rewards), 200, False).passed


def test_no_support_is_not_estimable_and_fails_the_gate() -> None:
    r, mu = [1.0, 0.0, 1.0], [0.5, 0.5, 0.5]
    p = paired_snips(_inputs(r, mu, [0.0, 0.0, 0.0]), _inputs(r, mu, [1.0, 1.0, 1.0]))
    assert math.isnan(p.diff) and p.events_needed is None
    v = gate(p, 3, 1, False)
    assert not v.passed and "not estimable" in v.summary()


def test_events_needed_follows_the_square_law() -> None:
    # diff 0.1, se 0.1 on 100 events: N = 100 * (1.959964 * 0.1 / 0.1)^2 = 384.15 -> 385
    assert events_needed(0.1, 0.1, 100, 0.05) == 285
    assert events_needed(0.1, 0.01, 100, 0.05) == 0  # already clear
    assert events_needed(-0.1, 0.01, 100, 0.05) is None  # the estimate itself is not a lift
    # with a minimum lift of 0.05, the margin halves: four times the events
    assert (
        events_needed(0.1, 0.1, 100, 0.05, min_lift=0.05)
        == math.ceil(100 * (1.959964 * 0.1 / 0.05) ** 2) - 100
    )


def test_gate_needs_min_events_and_the_minimum_lift(logged):
    cand, champ, _ = logged
    p = paired_dr(cand, champ)
    assert gate(p, len(cand.rewards), 200, False).passed
    small = gate(p, 100, 200, False)
    assert not small.passed and "minimum 200" in small.summary()
    high = gate(p, len(cand.rewards), 200, False, min_lift=p.ci_low + 0.01)
    assert not high.passed and "≤ minimum lift" in high.summary()
    summary = gate(p, len(cand.rewards), 200, True).summary()
    assert summary.startswith("PASS (dr)") and "95% CI" in summary and "logging policy" in summary
    metrics = gate(p, len(cand.rewards), 200, False).metrics()
    assert metrics["gate.diff"] == pytest.approx(p.diff) and metrics["gate.events_needed"] == 0


def test_gate_promotes_better_and_refuses_worse_candidates(problem) -> None:
    """20 fixed target policies on uniform-logged data: 10 clearly better than the logging
    policy (mostly-optimal), 10 clearly worse (mostly-pessimal); SNIPS paired difference."""
    rng = np.random.default_rng(0)
    n = 4000
    s = rng.integers(0, 4, n)
    a = rng.integers(0, 5, n)
    r = (rng.random(n) < problem.table[s, a]).astype(float)
    logging = np.full(n, 0.2)
    best, worst = problem.table.argmax(axis=1), problem.table.argmin(axis=1)
    champion = _inputs(r, logging, logging)  # the logging policy itself
    outcomes = []
    for k in range(20):
        good = k < 10
        target_action = (best if good else worst)[s]
        share = 0.7 + 0.02 * (k % 10)  # each a different mix with uniform
        pi = np.where(a == target_action, share + (1 - share) / 5, (1 - share) / 5)
        verdict = gate(paired_snips(_inputs(r, logging, pi), champion), n, 500, True)
        outcomes.append((good, verdict.passed))
    assert all(passed == good for good, passed in outcomes), outcomes


def test_few_effective_events_block_the_gate_and_say_how_many_more() -> None:
    """500 events, the candidate puts its mass where the logging policy explored 2% of the
    time: a big estimated lift, but only ~25 effective events."""
    rng = np.random.default_rng(5)
    n = 500
    rare = rng.random(n) < 0.02
    mu = np.where(rare, 0.02, 0.98)
    r = np.where(rare, 1.0, 0.1) + rng.normal(0, 0.01, n)
    pi_c = np.where(rare, 1.0, 0.0)
    p = paired_snips(_inputs(r, mu, pi_c), _inputs(r, mu, mu))
    assert p.ci_low > 0 and p.ess < 30
    v = gate(p, n, 200, False)
    more = math.ceil(n * 200 / p.ess) - n
    assert not v.passed and f"worth {p.ess:.0f} effective" in v.summary()
    assert f"≈{more} more held-out events for 200 effective" in v.summary()
    assert gate(p, n, 10, False).passed  # with a minimum it meets, the interval decides
