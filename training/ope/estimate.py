"""The estimate record and the one signature every estimator shares.

:class:`Estimate` is what every estimator returns; :func:`check_inputs` validates the
arrays once; :class:`CheckedEstimator` is the base whose ``estimate`` checks the inputs
and hands float arrays to the estimator's formula. The interval helpers (a normal
approximation of a mean of i.i.d. terms, Kish's effective sample size) are shared by
the estimators of :mod:`training.ope.estimators`; they scale huge or tiny values by a
power of two before squaring (an exact operation), so no accepted input overflows or
vanishes, and every other input gives the textbook formulas' figures to the last bit.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import Any, ClassVar

import numpy as np

from training.errors import EstimatorInputError, MissingRewardModelError

#: Largest magnitude accepted for a reward or a reward model's value: far beyond any real
#: reward, and with ``MIN_LOGGING_PROB`` it keeps every weighted term finite.
MAX_ABS_VALUE = 1e100
#: Smallest logging probability accepted (a weight of at most ``1e100``): a logged action
#: drawn with a smaller probability is a corrupt propensity, not a rare event.
MIN_LOGGING_PROB = 1e-100
#: Why an estimator that weights rewards gives no value when the target never agrees
#: with the logging policy.
NO_SUPPORT = (
    "no support: the evaluated policy gives probability 0 to every logged action, "
    "so the logs say nothing about its value"
)
#: Why such an estimator gives no interval with a single supported event.
ONE_SUPPORTED = (
    "one supported event: the variance of the weighted term cannot be estimated from one "
    "event, so there is no interval"
)


@dataclass(frozen=True, slots=True)
class Estimate:
    """A policy value estimate with its ``1 - alpha`` confidence interval.

    ``value`` is ``None`` when the estimator cannot be computed on the logs, the interval
    bounds when it cannot be estimated; ``reason`` then says why. ``biased`` marks an
    estimator of a biased quantity (clipped IPS, Switch-DR): its interval covers that
    quantity, not the policy's value, and ``note`` says by how much the data were
    altered; such an interval is never a bound for a decision.
    """

    value: float | None
    ci_low: float | None
    ci_high: float | None
    ess: float
    n: int
    reason: str | None = None
    biased: bool = False
    note: str | None = None

    @classmethod
    def null(cls, n: int, reason: str, biased: bool = False) -> Estimate:
        """No estimate, with the reason."""
        return cls(None, None, None, 0.0, n, reason, biased)

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "ess": self.ess,
            "n": self.n,
            "reason": self.reason,
            "biased": self.biased,
            "note": self.note,
        }


def _array(name: str, values: object, n: int | None) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise EstimatorInputError(f"{name}: not numeric ({exc})", field=name) from None
    if arr.ndim != 1:
        raise EstimatorInputError(f"{name}: expected shape (n,), got {arr.shape}", field=name)
    if n is not None and arr.shape[0] != n:
        raise EstimatorInputError(
            f"{name}: length {arr.shape[0]} does not match rewards' length {n}", field=name
        )
    _refuse(name, ~np.isfinite(arr), "NaN or infinite")
    return arr


def _refuse(name: str, bad: np.ndarray, problem: str) -> None:
    """Raise, naming the input and how many of its rows are ``bad``, when any is."""
    count = int(np.count_nonzero(bad))
    if count:
        rows = "row" if bad.shape[0] == 1 else "rows"
        raise EstimatorInputError(
            f"{name}: {problem} in {count} of {bad.shape[0]} {rows}", field=name
        )


def check_inputs(
    rewards: object,
    logging_probs: object,
    target_probs: object,
    q_logged: object = None,
    q_target: object = None,
    alpha: float = 0.05,
    labels: Mapping[str, str] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Validate and convert the estimators' inputs; raise :class:`EstimatorInputError`
    naming the input and the number of bad rows.

    Parameters
    ----------
    rewards, logging_probs, target_probs, q_logged, q_target: array-like, shape (n_rounds,)
        As for every estimator's ``estimate``; both ``q`` arrays or neither. Every value
        finite; rewards and ``q`` values of magnitude at most :data:`MAX_ABS_VALUE`;
        logging probabilities in ``[MIN_LOGGING_PROB, 1]``.
    alpha: float, default 0.05
        In ``(0, 1)``.
    labels: mapping of str to str, optional
        The name an error gives each input (a file's column names, say), by parameter
        name; the parameter's own name otherwise.

    Returns
    -------
    r, mu, pi, q_logged, q_target: ndarray, shape (n_rounds,) each
        Float64 arrays; the ``q`` arrays are ``None`` when not given.
    """
    names = {**{k: k for k in _INPUTS}, **(labels or {})}
    r = _array(names["rewards"], rewards, None)
    n = r.shape[0]
    if n == 0:
        raise EstimatorInputError(
            f"{names['rewards']}: at least one logged round is required", field=names["rewards"]
        )
    _refuse(names["rewards"], np.abs(r) > MAX_ABS_VALUE, f"magnitude above {MAX_ABS_VALUE:g}")
    mu = _array(names["logging_probs"], logging_probs, n)
    _refuse(names["logging_probs"], (mu <= 0.0) | (mu > 1.0), "outside (0, 1]")
    _refuse(names["logging_probs"], mu < MIN_LOGGING_PROB, f"below {MIN_LOGGING_PROB:g}")
    pi = _array(names["target_probs"], target_probs, n)
    _refuse(names["target_probs"], (pi < 0.0) | (pi > 1.0), "outside [0, 1]")
    ql = None if q_logged is None else _array(names["q_logged"], q_logged, n)
    qt = None if q_target is None else _array(names["q_target"], q_target, n)
    for key, q in (("q_logged", ql), ("q_target", qt)):
        if q is not None:
            _refuse(names[key], np.abs(q) > MAX_ABS_VALUE, f"magnitude above {MAX_ABS_VALUE:g}")
    if (ql is None) != (qt is None):
        raise EstimatorInputError(
            f"give both {names['q_logged']} and {names['q_target']}, or neither",
            field=names["q_logged"],
        )
    if not 0.0 < alpha < 1.0:
        raise EstimatorInputError("alpha must lie in (0, 1)", field="alpha")
    return r, mu, pi, ql, qt


_INPUTS = ("rewards", "logging_probs", "target_probs", "q_logged", "q_target")


def z_score(alpha: float) -> float:
    return NormalDist().inv_cdf(1.0 - alpha / 2.0)


#: Magnitudes within which squares and their sums stay normal floats: no scaling needed.
_SAFE = (math.ldexp(1.0, -400), math.ldexp(1.0, 400))


def pow2_scale(x: np.ndarray, always: bool = False) -> float:
    """A power of two near ``max |x|`` (``always``), or else only when that is so large
    or so small that squares would overflow or underflow (1 otherwise): dividing by a
    power of two is exact, so the figures computed on the scaled values are those of
    the textbook formulas."""
    top = float(np.max(np.abs(x))) if x.shape[0] else 0.0
    if top == 0.0 or not math.isfinite(top) or (not always and _SAFE[0] <= top <= _SAFE[1]):
        return 1.0
    return math.ldexp(1.0, math.frexp(top)[1])


def kish(w: np.ndarray) -> float:
    """Kish's effective sample size ``(Σ w)² / Σ w²``, on ``w`` scaled by
    :func:`pow2_scale` (the ratio does not change; huge or tiny weights cannot overflow
    or vanish in the squares)."""
    scale = pow2_scale(w)
    v = w / scale if scale != 1.0 else w
    s2 = float(np.sum(v * v))
    return float(np.sum(v)) ** 2 / s2 if s2 > 0 else 0.0


def mean_ci(terms: np.ndarray, alpha: float, ess: float) -> Estimate:
    """Mean of i.i.d. terms with a normal-approximation interval (on the terms scaled by
    :func:`pow2_scale`: the same figures, and no overflow in the squares)."""
    n = terms.shape[0]
    scale = pow2_scale(terms)
    t = terms / scale if scale != 1.0 else terms
    value = float(t.mean()) * scale
    se = float(t.std(ddof=1)) * scale / math.sqrt(n) if n > 1 else 0.0
    half = z_score(alpha) * se
    return Estimate(value, value - half, value + half, ess, n)


def need_q(
    name: str, ql: np.ndarray | None, qt: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    if ql is None or qt is None:
        raise MissingRewardModelError(
            f"{name} needs q_logged and q_target (a reward model)", field="q_logged"
        )
    return ql, qt


Arr = np.ndarray
Q = np.ndarray | None  # a reward model's values, when the caller has one


class CheckedEstimator(ABC):
    """The one signature of every estimator: ``estimate`` checks the inputs once
    (:func:`check_inputs`) and hands the arrays to the estimator's ``_value``.

    An estimator that weights rewards by ``π / μ`` (``weighted``) gives no value when
    the target gives probability 0 to every logged action (its value would be a
    falsely certain 0, or 0/0), and no interval with one supported event.
    """

    name: ClassVar[str]
    #: whether the estimator weights logged rewards by ``π / μ``
    weighted: ClassVar[bool] = True
    #: whether the estimator estimates a biased quantity (clipping, switching)
    biased: ClassVar[bool] = False

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
            ``value``, ``ci_low``, ``ci_high``, effective sample size ``ess`` and ``n``;
            ``None`` values with a ``reason`` when they cannot be estimated.
        """
        r, mu, pi, ql, qt = check_inputs(
            rewards, logging_probs, target_probs, q_logged, q_target, alpha
        )
        return self.on_checked(r, mu, pi, ql, qt, alpha)

    def on_checked(
        self, r: Arr, mu: Arr, pi: Arr, ql: Q, qt: Q, alpha: float
    ) -> Estimate:
        """:meth:`estimate` on arrays :func:`check_inputs` returned (checked once for
        several estimators)."""
        if not self.weighted:
            return self._value(r, mu, pi, ql, qt, alpha)
        supported = int(np.count_nonzero(pi > 0.0))
        if supported == 0:
            return Estimate.null(r.shape[0], NO_SUPPORT, self.biased)
        est = self._value(r, mu, pi, ql, qt, alpha)
        if supported == 1:
            return replace(est, ci_low=None, ci_high=None, reason=ONE_SUPPORTED)
        return est

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
