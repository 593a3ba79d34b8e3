"""Off-policy estimators: the value of a target policy from another policy's logs.

Every estimator has a ``name`` and the same signature (Open Bandit Pipeline's
convention)::

    estimate(rewards, logging_probs, target_probs, q_logged=None, q_target=None, alpha=0.05)
        -> Estimate(value, ci_low, ci_high, ess, n, reason, biased, note)

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
an estimator that clips is chosen; clipped IPS and Switch-DR are marked ``biased``.
An estimator that cannot be computed (no logged action the target supports) has
``value`` ``None`` and a ``reason``.

:data:`ESTIMATORS` is the one registry; :func:`evaluate` runs them all and returns an
:class:`Evaluation` that also carries the support and overlap :class:`Diagnostics`
(:func:`diagnose`); :func:`decision_problem` says when an estimate cannot bound a
decision; :func:`evaluate_policy` evaluates a :class:`policies.base.Policy` on a
:class:`policies.types.LoggedBatch`.
"""

from training.errors import EstimatorInputError, MissingRewardModelError
from training.ope.diagnostics import MIN_ESS, Diagnostics, decision_problem, diagnose
from training.ope.estimate import Estimate, check_inputs
from training.ope.estimators import DM, DR, IPS, SNIPS, ClippedIPS, Estimator, SwitchDR
from training.ope.policy_eval import PolicyInputs, RewardModel, evaluate_policy, policy_inputs
from training.ope.registry import (
    ESTIMATORS,
    MODEL_BASED,
    Evaluation,
    diagnostics_of,
    evaluate,
    table,
)
from training.reward_model import RidgeRewardModel

__all__ = [
    "DM",
    "DR",
    "ESTIMATORS",
    "IPS",
    "MIN_ESS",
    "MODEL_BASED",
    "SNIPS",
    "ClippedIPS",
    "Diagnostics",
    "Estimate",
    "Estimator",
    "EstimatorInputError",
    "Evaluation",
    "MissingRewardModelError",
    "PolicyInputs",
    "RewardModel",
    "RidgeRewardModel",
    "SwitchDR",
    "check_inputs",
    "decision_problem",
    "diagnose",
    "diagnostics_of",
    "evaluate",
    "evaluate_policy",
    "policy_inputs",
    "table",
]
