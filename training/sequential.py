"""An always-valid sequential test of two live arms: the mixture SPRT (mSPRT).

The rollout guardrails (:mod:`serving.rollout`) compare a treatment arm (a canary, or a
newly promoted champion) with its baseline (the champion, or the previous champion) on a
stream of observations per decision — a reward, a degraded flag, a "slower than the
baseline's p99" flag — and must be free to look after every decision without inflating
the false-alarm rate. The mSPRT gives that: its statistic is a nonnegative martingale
under the null hypothesis of equal means, so by Ville's inequality the probability that
it *ever* crosses ``1/alpha`` is at most ``alpha``, however often one peeks.

With ``Δ̂ = mean_treatment − mean_baseline``, its variance ``V = s² (1/n_t + 1/n_b)``
(``s²`` the pooled variance of both arms, which is the right variance under the null)
and a normal mixture ``θ ~ N(0, τ²)`` over the true difference, the mixture likelihood
ratio is::

    Λ_n = sqrt(V / (V + τ²)) · exp( τ² Δ̂² / (2 V (V + τ²)) )

and the test rejects once ``Λ_n ≥ 1/alpha``. A guardrail is one-sided: only a rejection
in the harmful direction counts (this can only lower the false-alarm rate). The
variance is a plug-in estimate, so validity is asymptotic; a burn-in of ``min_n``
observations per arm keeps the early estimates from firing, and the A/A simulations in
``tests/training/test_sequential.py`` and ``benchmarks/rollout_aa.py`` check the rate.

References:
    Johari, R., Koomen, P., Pekelis, L. & Walsh, D. (2017). Peeking at A/B tests: why it
    matters, and what to do about it. KDD 2017, 1517–1525.
    Robbins, H. (1970). Statistical methods related to the law of the iterated logarithm.
    Annals of Mathematical Statistics 41(5), 1397–1409.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

BASELINE = "baseline"
TREATMENT = "treatment"


@dataclass
class Moments:
    """Running count, mean and sum of squared deviations (Welford's update)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, x: float) -> None:
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)


def pooled_variance(a: Moments, b: Moments) -> float:
    """The variance of both arms' observations taken together (the null's variance)."""
    n = a.n + b.n
    if n < 2:
        return 0.0
    mean = (a.n * a.mean + b.n * b.mean) / n
    m2 = a.m2 + b.m2 + a.n * (a.mean - mean) ** 2 + b.n * (b.mean - mean) ** 2
    return m2 / (n - 1)


def mixture_log_lr(delta: np.ndarray | float, v: np.ndarray | float, tau2: float) -> np.ndarray:
    """``log Λ`` of the normal-mixture SPRT for an estimated difference ``delta`` with
    variance ``v`` and mixing variance ``tau2`` (element-wise; ``v ≤ 0`` gives 0: no
    evidence yet)."""
    d = np.asarray(delta, dtype=float)
    var = np.asarray(v, dtype=float)
    safe = np.where(var > 0, var, 1.0)
    out = 0.5 * np.log(safe / (safe + tau2)) + tau2 * d**2 / (2 * safe * (safe + tau2))
    return np.where(var > 0, out, 0.0)


@dataclass
class MSPRT:
    """A one-sided mSPRT of ``treatment`` against ``baseline`` (see the module doc).

    ``harmful`` is the direction that rejects: ``"lower"`` (a reward: the treatment's
    mean is lower) or ``"higher"`` (a degraded rate, a slow-answer rate). ``tau`` is the
    mixture's standard deviation, on the scale of the effects worth catching; ``min_n``
    is the burn-in per arm. Once rejected, it stays rejected (the evidence is kept).
    """

    alpha: float = 0.05
    tau: float = 0.1
    harmful: str = "lower"
    min_n: int = 100
    baseline: Moments = field(default_factory=Moments)
    treatment: Moments = field(default_factory=Moments)
    rejected_at: int | None = None
    log_lr_at_rejection: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError("alpha must lie in (0, 1)")
        if not (math.isfinite(self.tau) and self.tau > 0):
            raise ValueError("tau must be a finite number > 0")
        if self.harmful not in ("lower", "higher"):
            raise ValueError("harmful must be 'lower' or 'higher'")
        if self.min_n < 2:
            raise ValueError("min_n must be >= 2")

    @property
    def threshold(self) -> float:
        """``log(1/alpha)``: the log-statistic that rejects."""
        return math.log(1.0 / self.alpha)

    @property
    def difference(self) -> float:
        """``mean_treatment − mean_baseline``."""
        return self.treatment.mean - self.baseline.mean

    @property
    def n(self) -> int:
        """Observations seen, both arms."""
        return self.baseline.n + self.treatment.n

    def variance(self) -> float:
        """The variance of :attr:`difference` under the null."""
        a, b = self.baseline, self.treatment
        if a.n == 0 or b.n == 0:
            return 0.0
        return pooled_variance(a, b) * (1.0 / a.n + 1.0 / b.n)

    def log_lr(self) -> float:
        """The current ``log Λ`` (0 before both arms have data)."""
        return float(mixture_log_lr(self.difference, self.variance(), self.tau**2))

    def observe(self, arm: str, x: float) -> bool:
        """Add one observation of ``arm`` (``baseline`` or ``treatment``); return whether
        the test has rejected (now or before)."""
        if not math.isfinite(x):
            raise ValueError(f"observation must be finite, got {x!r}")
        (self.treatment if arm == TREATMENT else self.baseline).add(float(x))
        if self.rejected_at is None and self._harmful_evidence():
            self.rejected_at = self.n
            self.log_lr_at_rejection = self.log_lr()
        return self.rejected_at is not None

    def _harmful_evidence(self) -> bool:
        if min(self.baseline.n, self.treatment.n) < self.min_n:
            return False
        d = self.difference
        if (d >= 0) if self.harmful == "lower" else (d <= 0):
            return False
        return self.log_lr() >= self.threshold

    def evidence(self) -> dict[str, float | int | str | None]:
        """The test's state, as recorded with a rollback."""
        return {
            "log_lr": self.log_lr(),
            "threshold": self.threshold,
            "difference": self.difference,
            "baseline_mean": self.baseline.mean,
            "treatment_mean": self.treatment.mean,
            "baseline_n": self.baseline.n,
            "treatment_n": self.treatment.n,
            "rejected_at": self.rejected_at,
            "harmful": self.harmful,
            "alpha": self.alpha,
            "tau": self.tau,
        }


def first_rejection(
    arms: np.ndarray,
    values: np.ndarray,
    *,
    alpha: float = 0.05,
    tau: float = 0.1,
    harmful: str = "lower",
    min_n: int = 100,
) -> int | None:
    """The number of observations after which :class:`MSPRT` first rejects on the stream
    ``(arms[i], values[i])`` (``arms``: 1 for treatment, 0 for baseline), or ``None``.

    The same computation as feeding :meth:`MSPRT.observe` one by one, vectorised over the
    whole path (for simulations over many seeds). ``arms``, ``values``: shape (n,).
    """
    t = np.asarray(arms, dtype=bool)
    x = np.asarray(values, dtype=float)
    nt = np.cumsum(t)
    nb = np.cumsum(~t)
    st = np.cumsum(np.where(t, x, 0.0))
    sb = np.cumsum(np.where(t, 0.0, x))
    sq = np.cumsum(x * x)
    n = nt + nb
    with np.errstate(divide="ignore", invalid="ignore"):
        mt = st / np.maximum(nt, 1)
        mb = sb / np.maximum(nb, 1)
        mean = (st + sb) / n
        s2 = np.where(n > 1, (sq - n * mean**2) / np.maximum(n - 1, 1), 0.0)
        v = np.where((nt > 0) & (nb > 0), np.maximum(s2, 0.0) * (1 / np.maximum(nt, 1)
                                                                  + 1 / np.maximum(nb, 1)), 0.0)
    d = mt - mb
    llr = mixture_log_lr(d, v, tau * tau)
    side = d < 0 if harmful == "lower" else d > 0
    hits = np.flatnonzero(side & (np.minimum(nt, nb) >= min_n) & (llr >= math.log(1 / alpha)))
    return None if hits.size == 0 else int(hits[0]) + 1
