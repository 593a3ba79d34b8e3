"""Support and overlap diagnostics: how much the logs can say about a target policy.

Every evaluation carries them, because an estimate and its interval are only as good
as the overlap between the logging and the target policy. With the importance weights
``w_i = π_i / μ_i`` of the ``n`` logged events:

- ``support``: the share of logged events the target gives probability ``> 0``
  (``supported`` of them): with none, weighting estimators have no value at all;
- ``max_weight`` and ``mean_weight``: a few huge weights dominate IPS and DR, and a
  mean weight far from 1 says the target rarely agrees with the logged actions;
- ``ess``: Kish's effective sample size ``(Σ w)² / Σ w²``, the number of equally
  weighted events the weighted sample is worth.

The normal-approximation intervals need many effective events; below
:data:`MIN_ESS` (the usual rule of thumb for a mean's normal approximation) they are
not meaningful and the diagnostics carry a warning, as they do without support.
Callers that decide on an interval (the promotion gate) refuse to decide then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.ope.estimate import Estimate, check_inputs, kish

#: Fewest effective events for which the normal-approximation intervals mean anything.
MIN_ESS = 30.0


@dataclass(frozen=True, slots=True)
class Diagnostics:
    """Support and overlap of a target policy on ``n`` logged events, with warnings."""

    n: int
    supported: int
    support: float
    max_weight: float
    mean_weight: float
    ess: float
    warnings: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """The figures (the warnings are reported beside them, once)."""
        return {
            "n": self.n,
            "supported": self.supported,
            "support": self.support,
            "max_weight": self.max_weight,
            "mean_weight": self.mean_weight,
            "ess": self.ess,
        }


def diagnose(logging_probs: object, target_probs: object) -> Diagnostics:
    """The diagnostics of a target policy with probabilities ``target_probs`` of the logged
    actions, logged with probabilities ``logging_probs`` (each array-like, shape (n,),
    checked as by :func:`~training.ope.estimate.check_inputs`)."""
    mu = np.asarray(logging_probs, dtype=np.float64)
    _, mu, pi, _, _ = check_inputs(np.zeros(mu.shape[:1]), mu, target_probs)
    return weight_diagnostics(mu, pi)


def weight_diagnostics(mu: np.ndarray, pi: np.ndarray) -> Diagnostics:
    """:func:`diagnose` on float arrays already checked."""
    w = pi / mu
    n = w.shape[0]
    supported = int(np.count_nonzero(w > 0.0))
    ess = kish(w)
    max_w = float(w.max())
    warnings = []
    if supported == 0:
        warnings.append(
            "no support: the evaluated policy gives probability 0 to every logged action; "
            "weighting estimators have no value and the reward model alone cannot be checked"
        )
    elif ess < MIN_ESS:
        warnings.append(
            f"effective sample size {ess:.1f} of {n} events (max weight {max_w:.4g}, "
            f"support {supported / n:.1%}): below {MIN_ESS:g}, the 95% intervals are not "
            "meaningful"
        )
    return Diagnostics(
        n, supported, supported / n, max_w, float(w.mean()), ess, tuple(warnings)
    )


def decision_problem(
    estimates: Mapping[str, Estimate], name: str, diagnostics: Diagnostics | None
) -> str | None:
    """Why the estimator ``name`` of ``estimates`` cannot bound a decision (a promotion),
    or ``None`` when it can: no value or interval, a biased quantity, or diagnostics
    that make the interval meaningless."""
    est = estimates.get(name)
    if est is None:
        return f"no {name} estimate"
    if est.value is None or est.ci_low is None or est.ci_high is None:
        return f"no {name} estimate ({est.reason})"
    if est.biased:
        return f"{name} estimates a biased quantity, never a bound"
    if diagnostics is not None and diagnostics.warnings:
        return diagnostics.warnings[0]
    return None
