"""The paired off-policy difference: candidate − champion on the same logged events.

Both policies are evaluated on the same held-out rows, so their estimates share every
reward and every logging probability: their errors are strongly correlated and the
interval of the difference is far narrower than either interval alone. Comparing one
policy's lower bound with the other's point estimate ignores that correlation (too
strict when the estimates move together) and the second estimate's own error (too
lenient when they do not); the difference estimated event by event has neither flaw.

- **DR** (with a reward model ``q̂``): the doubly robust per-event term of each policy
  (Dudík, Langford & Li, *Doubly Robust Policy Evaluation and Learning*, ICML 2011),
  ``ψ_k,i = q̂_πk(x_i) + w_k,i (r_i − q̂(x_i, a_i))``; the difference is the mean of
  ``d_i = ψ_c,i − ψ_b,i``, with the normal interval of a mean of i.i.d. terms.
- **SNIPS** (no reward model): ``Δ̂ = Σ w_c r / Σ w_c − Σ w_b r / Σ w_b``, each term a
  ratio of two means (Swaminathan & Joachims, *The Self-Normalized Estimator for
  Counterfactual Learning*, NeurIPS 2015). Its variance by the delta method for ratio
  estimators (first-order Taylor expansion; e.g. Casella & Berger, *Statistical
  Inference*, 2nd ed., 2002, §5.5.4; van der Vaart, *Asymptotic Statistics*, 1998,
  ch. 3): the influence of event ``i`` on ``V̂_k`` is ``w_k,i (r_i − V̂_k) / w̄_k``, and
  ``Var(Δ̂) ≈ (1/n) · mean((infl_c,i − infl_b,i)²)``.

Events still needed (:func:`events_needed`): if the point estimate ``Δ̂`` holds and the
per-event spread stays the same, the standard error shrinks as ``1/√n``, so the lower end
``Δ̂ − z·se·√(n/N)`` clears the minimum lift ``m`` once
``N ≥ n · (z·se / (Δ̂ − m))²``; the answer is ``N − n`` more held-out events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from training.ope.policy_eval import PolicyInputs


@dataclass(frozen=True, slots=True)
class PairedEstimate:
    """Candidate − champion on the same events, with its ``1 - alpha`` interval.

    ``events_needed``: more held-out events for the interval to clear ``min_lift`` if the
    point estimate holds (0 when it already does, ``None`` when the point estimate itself
    does not exceed ``min_lift``: no number of events would do). ``ess``: the smaller of
    the two policies' Kish effective sample sizes ``(Σ w)² / Σ w²`` (Kish, *Survey
    Sampling*, 1965): how many events the importance-weighted terms are really worth."""

    estimator: str
    diff: float
    ci_low: float
    ci_high: float
    se: float
    n: int
    alpha: float
    events_needed: int | None
    ess: float = math.nan

    def as_dict(self) -> dict[str, float | int | str | None]:
        return {
            "estimator": self.estimator,
            "diff": self.diff,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "se": self.se,
            "n": self.n,
            "alpha": self.alpha,
            "events_needed": self.events_needed,
            "ess": self.ess,
        }


def z_score(alpha: float) -> float:
    """The two-sided normal quantile ``z_{1 − α/2}``."""
    return NormalDist().inv_cdf(1.0 - alpha / 2.0)


def events_needed(
    diff: float, se: float, n: int, alpha: float, min_lift: float = 0.0
) -> int | None:
    """More events for ``diff − z·se`` to exceed ``min_lift`` at today's per-event spread
    (module docstring); 0 when it already does, ``None`` when ``diff ≤ min_lift``."""
    margin = diff - min_lift
    if margin <= 0.0 or not math.isfinite(margin):
        return None
    half = z_score(alpha) * se
    if half < margin:
        return 0
    total = math.ceil(n * (half / margin) ** 2)
    return max(total - n, 1)


def _interval(
    name: str, diff: float, se: float, n: int, alpha: float, min_lift: float, ess: float
) -> PairedEstimate:
    half = z_score(alpha) * se
    needed = events_needed(diff, se, n, alpha, min_lift)
    return PairedEstimate(name, diff, diff - half, diff + half, se, n, alpha, needed, ess)


def kish(*inputs: PolicyInputs) -> float:
    """The smallest Kish effective sample size of the policies' importance weights."""
    out = math.inf
    for inp in inputs:
        w = _weights(inp)
        s2 = float(np.sum(w * w))
        out = min(out, float(np.sum(w)) ** 2 / s2 if s2 > 0 else 0.0)
    return out


def _weights(inp: PolicyInputs) -> np.ndarray:
    return np.asarray(inp.target_probs, dtype=float) / np.asarray(inp.logging_probs, dtype=float)


def paired_dr(
    candidate: PolicyInputs, champion: PolicyInputs, alpha: float = 0.05, min_lift: float = 0.0
) -> PairedEstimate:
    """DR difference from the per-event DR terms of both policies (module docstring).

    Both inputs come from the same logged rows and the same reward model."""
    r = np.asarray(candidate.rewards, dtype=float)
    ql = candidate.q_logged
    if ql is None or candidate.q_target is None or champion.q_target is None:
        raise ValueError("paired DR needs a reward model's q_logged and q_target")
    residual = r - np.asarray(ql, dtype=float)
    d = (np.asarray(candidate.q_target) - np.asarray(champion.q_target)) + (
        _weights(candidate) - _weights(champion)
    ) * residual
    n = d.shape[0]
    se = float(d.std(ddof=1)) / math.sqrt(n) if n > 1 else math.inf
    return _interval("dr", float(d.mean()), se, n, alpha, min_lift, kish(candidate, champion))


def paired_snips(
    candidate: PolicyInputs, champion: PolicyInputs, alpha: float = 0.05, min_lift: float = 0.0
) -> PairedEstimate:
    """SNIPS difference with the delta-method variance of the two ratios (module
    docstring). A policy that gives no logged action any probability has no SNIPS value:
    the difference is then not estimable (``nan``, infinite standard error)."""
    r = np.asarray(candidate.rewards, dtype=float)
    n = r.shape[0]
    influence = np.zeros(n)
    diff = 0.0
    for sign, inp in ((1.0, candidate), (-1.0, champion)):
        w = _weights(inp)
        wbar = float(w.mean())
        if wbar <= 0.0:
            return PairedEstimate(
                "snips", math.nan, math.nan, math.nan, math.inf, n, alpha, None, 0.0
            )
        value = float(np.sum(w * r) / np.sum(w))
        diff += sign * value
        influence += sign * w * (r - value) / wbar
    se = math.sqrt(float(np.mean(influence**2)) / n) if n > 1 else math.inf
    return _interval("snips", diff, se, n, alpha, min_lift, kish(candidate, champion))


def paired_difference(
    candidate: PolicyInputs, champion: PolicyInputs, alpha: float = 0.05, min_lift: float = 0.0
) -> PairedEstimate:
    """:func:`paired_dr` when the inputs carry a reward model's values, else
    :func:`paired_snips`."""
    if candidate.q_target is not None and champion.q_target is not None:
        return paired_dr(candidate, champion, alpha, min_lift)
    return paired_snips(candidate, champion, alpha, min_lift)
