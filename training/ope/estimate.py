"""The estimate record and the one signature every estimator shares.

:class:`Estimate` is what every estimator returns; :func:`check_inputs` validates the
arrays once; :class:`CheckedEstimator` is the base whose ``estimate`` checks the inputs
and hands float arrays to the estimator's formula. The interval helpers (a normal
approximation of a mean of i.i.d. terms, Kish's effective sample size) are shared by
the estimators of :mod:`training.ope.estimators`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from statistics import NormalDist
from typing import ClassVar

import numpy as np

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


def z_score(alpha: float) -> float:
    return NormalDist().inv_cdf(1.0 - alpha / 2.0)


def kish(w: np.ndarray) -> float:
    s2 = float(np.sum(w * w))
    return float(np.sum(w)) ** 2 / s2 if s2 > 0 else 0.0


def mean_ci(terms: np.ndarray, alpha: float, ess: float) -> Estimate:
    """Mean of i.i.d. terms with a normal-approximation interval."""
    n = terms.shape[0]
    value = float(terms.mean())
    se = float(terms.std(ddof=1)) / math.sqrt(n) if n > 1 else 0.0
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
