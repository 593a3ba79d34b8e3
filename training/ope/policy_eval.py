"""A target policy on a logged batch: its probabilities and a reward model's values,
then every estimator's value of it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from policies.base import Policy
from policies.types import Action, Context, LoggedBatch
from training.errors import EstimatorInputError
from training.ope.registry import Evaluation, evaluate

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
        return _inputs_from_rows(batch, pmfs, q)
    return _inputs_row_by_row(policy, batch, reward_model, pmfs)


def _inputs_from_rows(
    batch: LoggedBatch, pmfs: Sequence[np.ndarray], q: Sequence[np.ndarray]
) -> PolicyInputs:
    """:class:`PolicyInputs` from every row's pmf and ``q̂`` computed beforehand, one
    per logged round: picked and dotted column-wise, no call to the policy or model."""
    n = len(batch)
    chosen = np.asarray(batch.chosen, dtype=np.int64).tolist()
    pmfs = [np.asarray(p, dtype=float) for p in pmfs]
    return PolicyInputs(
        np.asarray(batch.rewards, dtype=float),
        np.asarray(batch.probabilities, dtype=float),
        np.fromiter(map(_at, pmfs, chosen), dtype=float, count=n),
        np.fromiter(map(_at, q, chosen), dtype=float, count=n),
        np.fromiter(map(_dot, pmfs, q), dtype=float, count=n),
    )


def _inputs_row_by_row(
    policy: Policy,
    batch: LoggedBatch,
    reward_model: RewardModel | None,
    pmfs: Sequence[np.ndarray] | None,
) -> PolicyInputs:
    """:class:`PolicyInputs` asking ``policy.pmf`` (unless ``pmfs`` are given) and the
    reward model (when there is one) row by row."""
    n = len(batch)
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
) -> Evaluation:
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
