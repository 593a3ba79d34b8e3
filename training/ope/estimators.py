"""The off-policy estimators: IPS, clipped IPS, SNIPS, DM, DR and Switch-DR.

Each takes the arrays described in :mod:`training.ope` through the one ``estimate``
signature of :class:`~training.ope.estimate.CheckedEstimator` and implements its formula
on checked arrays; each docstring gives the formula and the paper it comes from.

Clipped IPS and Switch-DR trade bias for variance: their estimates are marked
``biased`` with a note saying how many events were clipped or switched, because their
normal intervals cover the altered quantity, not the policy's value (in the simulator's
check their intervals covered the truth in a few percent of runs); nothing uses them
as bounds for a decision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from training.errors import EstimatorInputError
from training.ope.estimate import (
    Arr,
    CheckedEstimator,
    Estimate,
    Q,
    kish,
    mean_ci,
    need_q,
    pow2_scale,
    z_score,
)


@dataclass(frozen=True)
class IPS(CheckedEstimator):
    """Inverse propensity scoring (Horvitz–Thompson).

    ``V̂ = (1/n) Σ_i w_i r_i``, ``w_i = π_i / μ_i``; unbiased when ``μ > 0`` wherever
    ``π > 0``. CI: normal approximation of the mean of ``w_i r_i``.

    References:
        Horvitz & Thompson, *A Generalization of Sampling Without Replacement from a
        Finite Universe*, JASA 47 (1952).
    """

    name: ClassVar[str] = "ips"

    def _value(self, r: Arr, mu: Arr, pi: Arr, _ql: Q, _qt: Q, alpha: float) -> Estimate:
        w = pi / mu
        return mean_ci(w * r, alpha, kish(w))


@dataclass(frozen=True)
class ClippedIPS(CheckedEstimator):
    """IPS with weights clipped at ``max_weight``: ``V̂ = (1/n) Σ_i min(w_i, M) r_i``.

    Trades a downward bias (for non-negative rewards) for lower variance. CI: normal
    approximation of the mean of the clipped terms, an interval for
    ``E[min(w, M) r]``, not for the policy's value: the estimate is marked ``biased``.

    Parameters
    ----------
    max_weight: float, default 10.0
        The clipping threshold ``M`` of the importance weights, ``> 0``.

    References:
        Ionides, *Truncated Importance Sampling*, JCGS 17 (2008); Bottou et al.,
        *Counterfactual Reasoning and Learning Systems*, JMLR 14 (2013).
    """

    max_weight: float = 10.0
    name: ClassVar[str] = "clipped_ips"
    biased: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if not self.max_weight > 0:
            raise EstimatorInputError("max_weight must be > 0", field="max_weight")

    def _value(self, r: Arr, mu: Arr, pi: Arr, _ql: Q, _qt: Q, alpha: float) -> Estimate:
        raw = pi / mu
        w = np.minimum(raw, self.max_weight)
        clipped = int(np.count_nonzero(raw > self.max_weight))
        note = (
            f"estimates the mean of min(w, {self.max_weight:g})·r, not the policy's value: "
            f"{clipped} of {r.shape[0]} weights clipped; the interval ignores that bias"
        )
        return replace(mean_ci(w * r, alpha, kish(w)), biased=True, note=note)


@dataclass(frozen=True)
class SNIPS(CheckedEstimator):
    """Self-normalised IPS: ``V̂ = Σ_i w_i r_i / Σ_i w_i``.

    Biased but consistent, with far lower variance than IPS when weights are large.
    CI by the delta method for a ratio of means:
    ``Var(V̂) ≈ (1/n) · mean((w_i (r_i − V̂))²) / mean(w_i)²``, computed on the weights
    scaled by a power of two near their maximum (the ratio is scale-free).

    References:
        Swaminathan & Joachims, *The Self-Normalized Estimator for Counterfactual
        Learning*, NeurIPS 2015.
    """

    name: ClassVar[str] = "snips"

    def _value(self, r: Arr, mu: Arr, pi: Arr, _ql: Q, _qt: Q, alpha: float) -> Estimate:
        w = pi / mu
        w = w / pow2_scale(w, always=True)  # within [0, 1]: w·r cannot overflow squared
        n = r.shape[0]
        wbar = float(w.mean())  # > 0: estimate() answers no support before calling
        value = float(np.sum(w * r) / np.sum(w))
        var = float(np.mean((w * (r - value)) ** 2)) / (wbar * wbar) / n
        half = z_score(alpha) * math.sqrt(var)
        return Estimate(value, value - half, value + half, kish(w), n)


@dataclass(frozen=True)
class DM(CheckedEstimator):
    """Direct method: ``V̂ = (1/n) Σ_i q̂_π(x_i)`` with ``q̂_π(x) = Σ_a π(a|x) q̂(x, a)``.

    Low variance, biased as much as the reward model is wrong. CI: normal
    approximation over contexts, conditional on the reward model (it ignores the
    model's own estimation error).

    References:
        Dudík, Langford & Li, *Doubly Robust Policy Evaluation and Learning*, ICML 2011
        (the direct method as their baseline).
    """

    name: ClassVar[str] = "dm"
    weighted: ClassVar[bool] = False

    def _value(self, r: Arr, _mu: Arr, _pi: Arr, ql: Q, qt: Q, alpha: float) -> Estimate:
        _, qt = need_q(self.name, ql, qt)
        return mean_ci(qt, alpha, float(r.shape[0]))


@dataclass(frozen=True)
class DR(CheckedEstimator):
    """Doubly robust: ``V̂ = (1/n) Σ_i [q̂_π(x_i) + w_i (r_i − q̂(x_i, a_i))]``.

    Unbiased when either the propensities or the reward model are right. CI: normal
    approximation of the mean of the bracketed terms.

    References:
        Dudík, Langford & Li, *Doubly Robust Policy Evaluation and Learning*, ICML 2011.
    """

    name: ClassVar[str] = "dr"

    def _value(self, r: Arr, mu: Arr, pi: Arr, ql: Q, qt: Q, alpha: float) -> Estimate:
        ql, qt = need_q(self.name, ql, qt)
        w = pi / mu
        return mean_ci(qt + w * (r - ql), alpha, kish(w))


@dataclass(frozen=True)
class SwitchDR(CheckedEstimator):
    """Switch-DR: the DR term where ``w_i ≤ τ``, the DM term where the weight is larger.

    ``V̂ = (1/n) Σ_i [q̂_π(x_i) + 1{w_i ≤ τ} w_i (r_i − q̂(x_i, a_i))]`` — the round-level
    form used by Open Bandit Pipeline (the switch is applied to the logged action's
    weight). CI: normal approximation of the mean of the terms, an interval for the
    switched quantity (the reward model's bias where ``w > τ``), not for the policy's
    value: the estimate is marked ``biased``.

    Parameters
    ----------
    tau: float, default 10.0
        The switching threshold ``τ`` on the importance weight, ``> 0``.

    References:
        Wang, Agarwal & Dudík, *Optimal and Adaptive Off-policy Evaluation in
        Contextual Bandits*, ICML 2017.
    """

    tau: float = 10.0
    name: ClassVar[str] = "switch_dr"
    biased: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if not self.tau > 0:
            raise EstimatorInputError("tau must be > 0", field="tau")

    def _value(self, r: Arr, mu: Arr, pi: Arr, ql: Q, qt: Q, alpha: float) -> Estimate:
        ql, qt = need_q(self.name, ql, qt)
        w = pi / mu
        keep = w <= self.tau
        terms = qt + np.where(keep, w * (r - ql), 0.0)
        switched = int(np.count_nonzero(~keep))
        note = (
            f"estimates DR with the reward model alone where w > {self.tau:g}, not the "
            f"policy's value: {switched} of {r.shape[0]} events switched; the interval "
            "ignores the reward model's bias"
        )
        est = mean_ci(terms, alpha, kish(np.where(keep, w, 0.0)))
        return replace(est, biased=True, note=note)


#: Any of the estimators above.
Estimator = IPS | ClippedIPS | SNIPS | DM | DR | SwitchDR
