"""The mSPRT of the rollout guardrails: always valid under continuous peeking (A/A false
rejections at most alpha over many seeds), quick on a clearly worse arm, and the
vectorised path equal to the one-by-one test."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.sequential import (
    BASELINE,
    MSPRT,
    TREATMENT,
    Moments,
    first_rejection,
    mixture_log_lr,
    pooled_variance,
)

SEEDS = 1000
STEPS = 20_000


def _stream(seed: int, share: float, p_base: float, p_treat: float, n: int = STEPS):
    rng = np.random.default_rng(seed)
    arms = rng.random(n) < share
    values = (rng.random(n) < np.where(arms, p_treat, p_base)).astype(float)
    return arms, values


@pytest.mark.parametrize("share", [0.1, 0.5], ids=["canary-10pct", "even-split"])
def test_aa_false_rejections_at_most_alpha_under_continuous_peeking(share: float) -> None:
    # checked after every one of 20,000 observations, on 1,000 seeds: the rate of ever
    # rejecting an arm identical to its baseline stays below alpha = 5%
    rejected = sum(
        first_rejection(*_stream(seed, share, 0.3, 0.3)) is not None for seed in range(SEEDS)
    )
    assert rejected / SEEDS <= 0.05


def test_a_naive_peeking_t_test_would_not_be_valid() -> None:
    # the same streams, tested with a fixed-horizon z-test after every 100 observations,
    # falsely reject far more often: the mixture is what makes peeking safe
    naive = 0
    for seed in range(200):
        arms, values = _stream(seed, 0.5, 0.3, 0.3, 5000)
        for n in range(200, 5001, 100):
            a, v = arms[:n], values[:n]
            d = v[a].mean() - v[~a].mean()
            se = math.sqrt(v.var() * (1 / a.sum() + 1 / (~a).sum()))
            if d < 0 and abs(d) / se > 1.96:
                naive += 1
                break
    assert naive / 200 > 0.1


@pytest.mark.parametrize(
    ("share", "bound"), [(0.1, 3000), (0.5, 1000)], ids=["canary-10pct", "even-split"]
)
def test_a_clearly_worse_arm_is_rejected_within_a_stated_number(share: float, bound: int) -> None:
    # reward rate 0.15 against 0.30: rejected on every seed within `bound` observations
    times = [first_rejection(*_stream(seed, share, 0.3, 0.15)) for seed in range(200)]
    assert all(t is not None and t <= bound for t in times), max(t or 10**9 for t in times)


def test_a_better_arm_is_never_rejected_by_a_one_sided_guardrail() -> None:
    times = [first_rejection(*_stream(seed, 0.5, 0.3, 0.45, 5000)) for seed in range(100)]
    assert times == [None] * 100


def test_higher_is_harmful_for_rates() -> None:
    arms, values = _stream(3, 0.5, 0.01, 0.2, 5000)
    assert first_rejection(arms, values, harmful="higher", tau=0.05) is not None
    assert first_rejection(arms, values, harmful="lower", tau=0.05) is None


@pytest.mark.parametrize("seed", range(5))
def test_vectorised_path_matches_one_by_one(seed: int) -> None:
    arms, values = _stream(seed, 0.3, 0.3, 0.2, 5000)
    test = MSPRT()
    at = None
    for i, (a, x) in enumerate(zip(arms, values, strict=True)):
        if test.observe(TREATMENT if a else BASELINE, float(x)):
            at = i + 1
            break
    assert at == first_rejection(arms, values)
    assert at is not None and test.rejected_at == at
    ev = test.evidence()
    assert ev["log_lr"] >= ev["threshold"] == pytest.approx(math.log(20), abs=1e-12)
    assert ev["difference"] < 0


def test_moments_and_pooled_variance_match_numpy() -> None:
    rng = np.random.default_rng(1)
    xs, ys = rng.normal(1, 2, 300), rng.normal(3, 1, 500)
    a, b = Moments(), Moments()
    for x in xs:
        a.add(float(x))
    for y in ys:
        b.add(float(y))
    assert a.mean == pytest.approx(xs.mean(), abs=1e-12)
    assert a.m2 / (a.n - 1) == pytest.approx(xs.var(ddof=1), rel=1e-10)
    assert pooled_variance(a, b) == pytest.approx(np.concatenate([xs, ys]).var(ddof=1), rel=1e-10)


def test_mixture_statistic_formula() -> None:
    # log Λ = ½ log(V/(V+τ²)) + τ²Δ²/(2V(V+τ²)), and 0 when there is no variance yet
    d, v, t2 = 0.1, 0.002, 0.01
    expected = 0.5 * math.log(v / (v + t2)) + t2 * d * d / (2 * v * (v + t2))
    assert float(mixture_log_lr(d, v, t2)) == pytest.approx(expected, abs=1e-12)
    assert float(mixture_log_lr(0.5, 0.0, t2)) == 0.0


def test_rejection_is_sticky_and_burn_in_holds() -> None:
    test = MSPRT(min_n=50)
    for _ in range(49):
        test.observe(BASELINE, 1.0)
        test.observe(TREATMENT, 0.0)
    assert test.rejected_at is None  # 49 < min_n per arm, however strong the evidence
    test.observe(BASELINE, 1.0)
    assert test.observe(TREATMENT, 0.0)
    for _ in range(100):
        test.observe(TREATMENT, 1.0)
    assert test.rejected_at == 100


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"tau": 0.0}, "tau"),
        ({"tau": float("nan")}, "tau"),
        ({"harmful": "up"}, "harmful"),
        ({"min_n": 1}, "min_n"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MSPRT(**kwargs)


def test_non_finite_observation_is_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        MSPRT().observe(BASELINE, float("inf"))
