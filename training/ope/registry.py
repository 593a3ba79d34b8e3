"""The one registry of estimators, running them all, and their table for JSON output."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from training.errors import EstimatorInputError
from training.ope.diagnostics import Diagnostics, weight_diagnostics
from training.ope.estimate import Estimate, check_inputs
from training.ope.estimators import DM, DR, IPS, SNIPS, ClippedIPS, Estimator, SwitchDR

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


class Evaluation(dict[str, Estimate]):
    """One target policy's estimates on one log, by estimator name (a plain mapping to
    every caller that reads estimates), with that log's :class:`Diagnostics`."""

    def __init__(self, estimates: Mapping[str, Estimate], diagnostics: Diagnostics) -> None:
        super().__init__(estimates)
        self.diagnostics = diagnostics


def diagnostics_of(estimates: Mapping[str, Estimate]) -> Diagnostics | None:
    """The diagnostics an :class:`Evaluation` carries (``None`` for a plain mapping)."""
    return estimates.diagnostics if isinstance(estimates, Evaluation) else None


def evaluate(
    rewards: object,
    logging_probs: object,
    target_probs: object,
    q_logged: object = None,
    q_target: object = None,
    alpha: float = 0.05,
    names: Sequence[str] | None = None,
) -> Evaluation:
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
    Evaluation
        One estimate per name, in the order of ``names``, and the support and overlap
        diagnostics of the target on these logs.
    """
    if names is None:
        names = [k for k in ESTIMATORS if q_logged is not None or k not in MODEL_BASED]
    unknown = [k for k in names if k not in ESTIMATORS]
    if unknown:
        raise EstimatorInputError(
            f"unknown estimator(s) {unknown}; known: {list(ESTIMATORS)}", field="estimators"
        )
    r, mu, pi, ql, qt = check_inputs(
        rewards, logging_probs, target_probs, q_logged, q_target, alpha
    )
    estimates = {k: ESTIMATORS[k]().on_checked(r, mu, pi, ql, qt, alpha) for k in names}
    return Evaluation(estimates, weight_diagnostics(mu, pi))


def table(estimates: Mapping[str, Estimate]) -> dict[str, dict[str, Any]]:
    """``{name: {"value", "ci_low", "ci_high", "ess", "n", "reason", "biased", "note"}}``
    for JSON output (``value`` and the bounds ``None`` when not estimable)."""
    return {k: v.as_dict() for k, v in estimates.items()}
