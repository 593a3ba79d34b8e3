"""Off-policy estimators: the value of a target policy from another policy's logs.

Every estimator has a ``name`` and the same signature (Open Bandit Pipeline's
convention)::

    estimate(rewards, logging_probs, target_probs, q_logged=None, q_target=None, alpha=0.05)
        -> Estimate(value, ci_low, ci_high, ess, n)

with, for the ``n`` logged rounds ``i``,

- ``rewards`` ``r_i``: the observed reward, shape ``(n,)``;
- ``logging_probs`` ``μ_i = μ(a_i | x_i)``: the logging policy's probability of the
  logged action, shape ``(n,)``, in ``(0, 1]``;
- ``target_probs`` ``π_i = π(a_i | x_i)``: the target policy's probability of that
  same action, shape ``(n,)``, in ``[0, 1]``;
- ``q_logged`` ``q̂(x_i, a_i)``: a reward model's estimate for the logged action;
- ``q_target`` ``Σ_a π(a | x_i) q̂(x_i, a)``: that model's value of the target policy.

Importance weights are ``w_i = π_i / μ_i``. Confidence intervals are at level
``1 - alpha``: normal approximations of a mean of i.i.d. terms for IPS, clipped IPS,
DM, DR and Switch-DR (conditional on the reward model for DM), and the delta method
for the self-normalised ratio in SNIPS. The effective sample size is Kish's
``(Σ w)² / Σ w²`` (``n`` for DM, which uses no weights). Nothing is clipped unless
an estimator that clips is chosen.

:data:`ESTIMATORS` is the one registry; :func:`evaluate` runs them all;
:func:`evaluate_policy` evaluates a :class:`policies.base.Policy` on a
:class:`policies.types.LoggedBatch`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import ClassVar

import numpy as np

from policies.base import Policy
from policies.featurize import DenseFeaturizer
from policies.types import Action, Context, LoggedBatch
from training.errors import EstimatorInputError, MissingRewardModelError


@dataclass(frozen=True, slots=True)
class Estimate:
    """A policy value estimate with its ``1 - alpha`` confidence interval."""

    value: float
    ci_low: float
    ci_high: float
    ess: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return {
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "ess": self.ess,
            "n": self.n,
        }


def _array(name: str, values: object, n: int | None) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise EstimatorInputError(f"{name}: not numeric ({exc})", field=name) from None
    if arr.ndim != 1:
        raise EstimatorInputError(f"{name}: expected shape (n,), got {arr.shape}", field=name)
    if n is not None and arr.shape[0] != n:
        raise EstimatorInputError(
            f"{name}: length {arr.shape[0]} does not match rewards' length {n}", field=name
        )
    if not np.all(np.isfinite(arr)):
        raise EstimatorInputError(f"{name}: contains NaN or infinite values", field=name)
    return arr


def check_inputs(
    rewards: object,
    logging_probs: object,
    target_probs: object,
    q_logged: object = None,
    q_target: object = None,
    alpha: float = 0.05,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Validate and convert the estimators' inputs; raise :class:`EstimatorInputError`.

    Parameters
    ----------
    rewards, logging_probs, target_probs, q_logged, q_target: array-like, shape (n_rounds,)
        As for every estimator's ``estimate``; both ``q`` arrays or neither.
    alpha: float, default 0.05
        In ``(0, 1)``.

    Returns
    -------
    r, mu, pi, q_logged, q_target: ndarray, shape (n_rounds,) each
        Float64 arrays; the ``q`` arrays are ``None`` when not given.
    """
    r = _array("rewards", rewards, None)
    n = r.shape[0]
    if n == 0:
        raise EstimatorInputError("rewards: at least one logged round is required", field="rewards")
    mu = _array("logging_probs", logging_probs, n)
    if np.any(mu <= 0.0) or np.any(mu > 1.0):
        raise EstimatorInputError("logging_probs must lie in (0, 1]", field="logging_probs")
    pi = _array("target_probs", target_probs, n)
    if np.any(pi < 0.0) or np.any(pi > 1.0):
        raise EstimatorInputError("target_probs must lie in [0, 1]", field="target_probs")
    ql = None if q_logged is None else _array("q_logged", q_logged, n)
    qt = None if q_target is None else _array("q_target", q_target, n)
    if (ql is None) != (qt is None):
        raise EstimatorInputError("give both q_logged and q_target, or neither", field="q_logged")
    if not 0.0 < alpha < 1.0:
        raise EstimatorInputError("alpha must lie in (0, 1)", field="alpha")
    return r, mu, pi, ql, qt


def _z(alpha: float) -> float:
    return NormalDist().inv_cdf(1.0 - alpha / 2.0)


def _kish(w: np.ndarray) -> float:
    s2 = float(np.sum(w * w))
    return float(np.sum(w)) ** 2 / s2 if s2 > 0 else 0.0


def _mean_ci(terms: np.ndarray, alpha: float, ess: float) -> Estimate:
    """Mean of i.i.d. terms with a normal-approximation interval."""
    n = terms.shape[0]
    value = float(terms.mean())
    se = float(terms.std(ddof=1)) / math.sqrt(n) if n > 1 else 0.0
    half = _z(alpha) * se
    return Estimate(value, value - half, value + half, ess, n)


def _need_q(
    name: str, ql: np.ndarray | None, qt: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    if ql is None or qt is None:
        raise MissingRewardModelError(
            f"{name} needs q_logged and q_target (a reward model)", field="q_logged"
        )
    return ql, qt


Arr = np.ndarray
Q = np.ndarray | None  # a reward model's values, when the caller has one


class _Checked(ABC):
    """The one signature of every estimator: ``estimate`` checks the inputs once
    (:func:`check_inputs`) and hands the arrays to the estimator's ``_value``."""

    name: ClassVar[str]

    def estimate(
        self,
        rewards: object,
        logging_probs: object,
        target_probs: object,
        q_logged: object = None,
        q_target: object = None,
        alpha: float = 0.05,
    ) -> Estimate:
        """The target policy's value on the logged rounds, with its confidence interval.

        Parameters
        ----------
        rewards: array-like, shape (n_rounds,)
            Observed reward ``r_i`` of each logged round.
        logging_probs: array-like, shape (n_rounds,)
            Logging policy's probability ``μ(a_i | x_i)`` of the logged action, in ``(0, 1]``.
        target_probs: array-like, shape (n_rounds,)
            Target policy's probability ``π(a_i | x_i)`` of that same action, in ``[0, 1]``.
        q_logged: array-like, shape (n_rounds,), optional
            Reward model's ``q̂(x_i, a_i)`` for the logged action (DM, DR, Switch-DR).
        q_target: array-like, shape (n_rounds,), optional
            Reward model's value of the target policy, ``Σ_a π(a | x_i) q̂(x_i, a)``.
        alpha: float, default 0.05
            Confidence intervals are at level ``1 - alpha``, in ``(0, 1)``.

        Returns
        -------
        Estimate
            ``value``, ``ci_low``, ``ci_high``, effective sample size ``ess`` and ``n``.
        """
        r, mu, pi, ql, qt = check_inputs(
            rewards, logging_probs, target_probs, q_logged, q_target, alpha
        )
        return self._value(r, mu, pi, ql, qt, alpha)

    @abstractmethod
    def _value(
        self,
        r: np.ndarray,
        mu: np.ndarray,
        pi: np.ndarray,
        ql: np.ndarray | None,
        qt: np.ndarray | None,
        alpha: float,
    ) -> Estimate:
        """The estimator's formula on checked arrays."""


@dataclass(frozen=True)
class IPS(_Checked):
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
        return _mean_ci(w * r, alpha, _kish(w))


@dataclass(frozen=True)
class ClippedIPS(_Checked):
    """IPS with weights clipped at ``max_weight``: ``V̂ = (1/n) Σ_i min(w_i, M) r_i``.

    Trades a downward bias (for non-negative rewards) for lower variance. CI: normal
    approximation of the mean of the clipped terms.

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

    def __post_init__(self) -> None:
        if not self.max_weight > 0:
            raise EstimatorInputError("max_weight must be > 0", field="max_weight")

    def _value(self, r: Arr, mu: Arr, pi: Arr, _ql: Q, _qt: Q, alpha: float) -> Estimate:
        w = np.minimum(pi / mu, self.max_weight)
        return _mean_ci(w * r, alpha, _kish(w))


@dataclass(frozen=True)
class SNIPS(_Checked):
    """Self-normalised IPS: ``V̂ = Σ_i w_i r_i / Σ_i w_i``.

    Biased but consistent, with far lower variance than IPS when weights are large.
    CI by the delta method for a ratio of means:
    ``Var(V̂) ≈ (1/n) · mean((w_i (r_i − V̂))²) / mean(w_i)²``.

    References:
        Swaminathan & Joachims, *The Self-Normalized Estimator for Counterfactual
        Learning*, NeurIPS 2015.
    """

    name: ClassVar[str] = "snips"

    def _value(self, r: Arr, mu: Arr, pi: Arr, _ql: Q, _qt: Q, alpha: float) -> Estimate:
        w = pi / mu
        n = r.shape[0]
        wbar = float(w.mean())
        if wbar <= 0.0:
            return Estimate(0.0, 0.0, 0.0, 0.0, n)  # the target never takes a logged action
        value = float(np.sum(w * r) / np.sum(w))
        var = float(np.mean((w * (r - value)) ** 2)) / (wbar * wbar) / n
        half = _z(alpha) * math.sqrt(var)
        return Estimate(value, value - half, value + half, _kish(w), n)


@dataclass(frozen=True)
class DM(_Checked):
    """Direct method: ``V̂ = (1/n) Σ_i q̂_π(x_i)`` with ``q̂_π(x) = Σ_a π(a|x) q̂(x, a)``.

    Low variance, biased as much as the reward model is wrong. CI: normal
    approximation over contexts, conditional on the reward model (it ignores the
    model's own estimation error).

    References:
        Dudík, Langford & Li, *Doubly Robust Policy Evaluation and Learning*, ICML 2011
        (the direct method as their baseline).
    """

    name: ClassVar[str] = "dm"

    def _value(self, r: Arr, _mu: Arr, _pi: Arr, ql: Q, qt: Q, alpha: float) -> Estimate:
        _, qt = _need_q(self.name, ql, qt)
        return _mean_ci(qt, alpha, float(r.shape[0]))


@dataclass(frozen=True)
class DR(_Checked):
    """Doubly robust: ``V̂ = (1/n) Σ_i [q̂_π(x_i) + w_i (r_i − q̂(x_i, a_i))]``.

    Unbiased when either the propensities or the reward model are right. CI: normal
    approximation of the mean of the bracketed terms.

    References:
        Dudík, Langford & Li, *Doubly Robust Policy Evaluation and Learning*, ICML 2011.
    """

    name: ClassVar[str] = "dr"

    def _value(self, r: Arr, mu: Arr, pi: Arr, ql: Q, qt: Q, alpha: float) -> Estimate:
        ql, qt = _need_q(self.name, ql, qt)
        w = pi / mu
        return _mean_ci(qt + w * (r - ql), alpha, _kish(w))


@dataclass(frozen=True)
class SwitchDR(_Checked):
    """Switch-DR: the DR term where ``w_i ≤ τ``, the DM term where the weight is larger.

    ``V̂ = (1/n) Σ_i [q̂_π(x_i) + 1{w_i ≤ τ} w_i (r_i − q̂(x_i, a_i))]`` — the round-level
    form used by Open Bandit Pipeline (the switch is applied to the logged action's
    weight). CI: normal approximation of the mean of the terms.

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

    def __post_init__(self) -> None:
        if not self.tau > 0:
            raise EstimatorInputError("tau must be > 0", field="tau")

    def _value(self, r: Arr, mu: Arr, pi: Arr, ql: Q, qt: Q, alpha: float) -> Estimate:
        ql, qt = _need_q(self.name, ql, qt)
        w = pi / mu
        keep = w <= self.tau
        terms = qt + np.where(keep, w * (r - ql), 0.0)
        return _mean_ci(terms, alpha, _kish(np.where(keep, w, 0.0)))


Estimator = IPS | ClippedIPS | SNIPS | DM | DR | SwitchDR

#: The one registry: name → estimator class (built with its default parameters).
ESTIMATORS: dict[str, type[Estimator]] = {
    "ips": IPS,
    "snips": SNIPS,
    "clipped_ips": ClippedIPS,
    "dm": DM,
    "dr": DR,
    "switch_dr": SwitchDR,
}
#: Estimators that need a reward model.
MODEL_BASED = frozenset({"dm", "dr", "switch_dr"})


def evaluate(
    rewards: object,
    logging_probs: object,
    target_probs: object,
    q_logged: object = None,
    q_target: object = None,
    alpha: float = 0.05,
    names: Sequence[str] | None = None,
) -> dict[str, Estimate]:
    """Run the named estimators (default: all, the model-based ones only given ``q``).

    Parameters
    ----------
    rewards, logging_probs, target_probs, q_logged, q_target: array-like, shape (n_rounds,)
        As for every estimator's ``estimate`` (see the module docstring).
    alpha: float, default 0.05
        Confidence level ``1 - alpha`` of every interval.
    names: sequence of str, optional
        Keys of :data:`ESTIMATORS` to run.

    Returns
    -------
    dict of str to Estimate
        One estimate per name, in the order of ``names``.
    """
    if names is None:
        names = [k for k in ESTIMATORS if q_logged is not None or k not in MODEL_BASED]
    unknown = [k for k in names if k not in ESTIMATORS]
    if unknown:
        raise EstimatorInputError(
            f"unknown estimator(s) {unknown}; known: {list(ESTIMATORS)}", field="estimators"
        )
    return {
        k: ESTIMATORS[k]().estimate(rewards, logging_probs, target_probs, q_logged, q_target, alpha)
        for k in names
    }


#: A reward model: expected reward of each action, shape ``(n_actions,)``.
RewardModel = Callable[[Context, Sequence[Action]], np.ndarray]


@dataclass(frozen=True)
class PolicyInputs:
    """What the estimators need about a target policy on a logged batch, shape ``(n,)`` each."""

    rewards: np.ndarray
    logging_probs: np.ndarray
    target_probs: np.ndarray
    q_logged: np.ndarray | None
    q_target: np.ndarray | None


def _at(values: np.ndarray, i: int) -> float:
    return values[i]


def _dot(pmf: np.ndarray, q: np.ndarray) -> float:
    return float(pmf @ q)


def policy_inputs(
    policy: Policy,
    batch: LoggedBatch,
    reward_model: RewardModel | None = None,
    pmfs: Sequence[np.ndarray] | None = None,
    q: Sequence[np.ndarray] | None = None,
) -> PolicyInputs:
    """Target probabilities ``π(a_i|x_i) = policy.pmf(x_i, A_i)[a_i]`` and, with a reward
    model, ``q̂(x_i, a_i)`` and ``Σ_a π(a|x_i) q̂(x_i, a)``.

    Parameters
    ----------
    policy: Policy
        The target policy.
    batch: LoggedBatch, n_rounds rows
        The logged rounds (contexts, candidate actions, chosen index, reward, propensity).
    reward_model: RewardModel, optional
        ``q̂(x, ·)`` for a context and its candidates, shape (n_actions_i,).
    pmfs: sequence of ndarray, each shape (n_actions_i,), optional
        ``policy.pmf`` of every row computed beforehand (in bulk, or once for several
        policies); one per logged round.
    q: sequence of ndarray, each shape (n_actions_i,), optional
        ``reward_model`` of every row computed beforehand.

    Returns
    -------
    PolicyInputs
        Rewards, logging and target probabilities, shape (n_rounds,) each, and the
        ``q`` arrays (``None`` without a reward model).
    """
    n = len(batch)
    if pmfs is not None and len(pmfs) != n:
        raise EstimatorInputError("pmfs: one per logged round is required", field="pmfs")
    if q is not None and reward_model is not None and len(q) == n and pmfs is not None:
        chosen = np.asarray(batch.chosen, dtype=np.int64).tolist()
        pmfs = [np.asarray(p, dtype=float) for p in pmfs]
        return PolicyInputs(
            np.asarray(batch.rewards, dtype=float),
            np.asarray(batch.probabilities, dtype=float),
            np.fromiter(map(_at, pmfs, chosen), dtype=float, count=n),
            np.fromiter(map(_at, q, chosen), dtype=float, count=n),
            np.fromiter(map(_dot, pmfs, q), dtype=float, count=n),
        )
    pi = np.empty(n)
    ql = np.empty(n) if reward_model is not None else None
    qt = np.empty(n) if reward_model is not None else None
    for i, (ctx, acts, idx) in enumerate(
        zip(batch.contexts, batch.actions, batch.chosen, strict=True)
    ):
        pmf = np.asarray(policy.pmf(ctx, acts) if pmfs is None else pmfs[i], dtype=float)
        pi[i] = pmf[int(idx)]
        if reward_model is not None:
            assert ql is not None and qt is not None
            q = np.asarray(reward_model(ctx, acts), dtype=float)
            ql[i] = q[int(idx)]
            qt[i] = float(pmf @ q)
    return PolicyInputs(
        np.asarray(batch.rewards, dtype=float),
        np.asarray(batch.probabilities, dtype=float),
        pi,
        ql,
        qt,
    )


def evaluate_policy(
    policy: Policy,
    batch: LoggedBatch,
    reward_model: RewardModel | None = None,
    alpha: float = 0.05,
    names: Sequence[str] | None = None,
    pmfs: Sequence[np.ndarray] | None = None,
    q: Sequence[np.ndarray] | None = None,
) -> dict[str, Estimate]:
    """Every estimator's value of ``policy`` on the logged ``batch``.

    Parameters
    ----------
    policy, batch, reward_model, pmfs, q:
        As for :func:`policy_inputs` (``batch`` of n_rounds rows).
    alpha, names:
        As for :func:`evaluate`.
    """
    inp = policy_inputs(policy, batch, reward_model, pmfs, q)
    return evaluate(
        inp.rewards, inp.logging_probs, inp.target_probs, inp.q_logged, inp.q_target, alpha, names
    )


def table(estimates: Mapping[str, Estimate]) -> dict[str, dict[str, float]]:
    """``{name: {"value", "ci_low", "ci_high", "ess", "n"}}`` for JSON output."""
    return {k: v.as_dict() for k, v in estimates.items()}


class RidgeRewardModel:
    """A simple reward model for DM and DR: one ridge regression per action id.

    Regresses the observed reward of the logged action on the hashed customer and
    context features (:class:`policies.featurize.DenseFeaturizer`, ``shared_dim`` wide
    plus a bias); an action id never logged is predicted by the mean logged reward.
    Calling the model gives ``q̂(x, a)`` for every action, shape ``(n_actions,)``.

    Parameters
    ----------
    ridge: float, default 1.0
        The L2 penalty ``λ`` of each regression, ``> 0``.
    shared_dim: int, default 64
        Width of the hashed customer and context features.

    References:
        Hoerl & Kennard, *Ridge Regression: Biased Estimation for Nonorthogonal Problems*,
        Technometrics 12 (1970).
    """

    def __init__(self, ridge: float = 1.0, shared_dim: int = 64) -> None:
        if ridge <= 0:
            raise EstimatorInputError("ridge must be > 0", field="ridge")
        self.ridge = ridge
        self._feat = DenseFeaturizer(shared_dim, 4)
        self._theta: dict[str, np.ndarray] = {}
        self._mean = 0.0

    def _x(self, context: Context) -> np.ndarray:
        return np.append(self._feat.shared(context).astype(np.float64), 1.0)

    def fit(self, batch: LoggedBatch) -> RidgeRewardModel:
        """Fit ``θ_a = (XᵀX + λI)⁻¹ Xᵀy`` per logged action id on ``batch`` (n_rounds rows)."""
        rows: dict[str, list[tuple[np.ndarray, float]]] = {}
        for ctx, acts, idx, r in zip(
            batch.contexts, batch.actions, batch.chosen, batch.rewards, strict=True
        ):
            rows.setdefault(acts[int(idx)].id, []).append((self._x(ctx), float(r)))
        self._mean = float(np.mean(batch.rewards)) if len(batch) else 0.0
        for action_id, data in rows.items():
            x = np.stack([d[0] for d in data])
            y = np.array([d[1] for d in data])
            a = x.T @ x + self.ridge * np.eye(x.shape[1])
            self._theta[action_id] = np.linalg.solve(a, x.T @ y)
        return self

    def __call__(self, context: Context, actions: Sequence[Action]) -> np.ndarray:
        """``q̂(x, a)`` of each of ``actions``, shape (n_actions,)."""
        x = self._x(context)
        return np.array(
            [float(self._theta[a.id] @ x) if a.id in self._theta else self._mean for a in actions]
        )
