"""The held-out rows scored once for the OPE table and the promotion gate: the reward model,
its ``q̂``, each compared policy's pmfs, every estimator of each policy
(:func:`evaluate_all`) and the paired gate's verdict (:func:`paired_gate`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from policies.bulk import BulkLearner
from policies.types import LoggedBatch
from training.columns import shared_features
from training.data import TrainingSet
from training.gate import GateVerdict, gate
from training.ope import evaluate_policy, policy_inputs
from training.paired import paired_difference

if TYPE_CHECKING:
    from training.train import TrainConfig


@dataclass
class HeldOutScores:
    """What the OPE table and the gate both read on the held-out rows, computed once: the
    reward model fitted on the training rows (``None`` under 20 of them), its ``q̂`` of
    every held-out row's actions, and each compared policy's pmfs there (by ``id``)."""

    model: Any
    q: list[np.ndarray] | None
    pmfs: dict[int, list[np.ndarray]]

    @classmethod
    def of(
        cls, policies: Iterable[Any], holdout: LoggedBatch, train: LoggedBatch
    ) -> HeldOutScores:
        from training.reward_model import RidgeRewardModel

        model = RidgeRewardModel().fit(train) if len(train) >= 20 else None
        q = model.predict_rows(holdout.contexts, holdout.actions) if model is not None else None
        return cls(model, q, {id(p): all_pmfs(p, holdout) for p in policies})


def evaluate_all(
    policies: dict[str, Any],
    holdout: TrainingSet,
    train: TrainingSet,
    alpha: float,
    bulk: bool = True,
    scored: HeldOutScores | None = None,
) -> dict[str, dict[str, Any]]:
    """Every estimator for every compared policy on the same held-out rows (``bulk``:
    featurise and score the rows in bulk, same numbers as row by row; ``scored``: the
    reward model, ``q̂`` and pmfs already computed for these policies and rows)."""
    batch = holdout.batch
    if bulk:
        if scored is None:
            scored = HeldOutScores.of(policies.values(), batch, train.batch)
        return {
            name: evaluate_policy(policy, batch, scored.model, alpha=alpha,
                                  pmfs=scored.pmfs[id(policy)], q=scored.q)
            for name, policy in policies.items()
        }  # fmt: skip
    from training.reward_model import RidgeRewardModel

    model = RidgeRewardModel().fit(train.batch) if len(train) >= 20 else None
    return {
        name: evaluate_policy(policy, batch, model, alpha=alpha)
        for name, policy in policies.items()
    }


def all_pmfs(policy: Any, batch: LoggedBatch) -> list[np.ndarray]:
    """``policy.pmf`` of every row of ``batch``: in bulk when the policy can
    (:func:`batch_pmfs`), row by row otherwise."""
    pmfs = batch_pmfs(policy, batch)
    if pmfs is None:
        pmfs = [policy.pmf(c, a) for c, a in zip(batch.contexts, batch.actions, strict=True)]
    return pmfs


def paired_gate(
    candidate: Any,
    champion: Any,
    holdout: LoggedBatch,
    train: LoggedBatch,
    cfg: TrainConfig,
    champion_is_logging: bool,
    scored: HeldOutScores | None = None,
) -> GateVerdict:
    """The gate's verdict on ``holdout``: the paired difference of :mod:`training.paired`,
    DR with the reward model fitted on ``train`` (independent of the held-out rewards, so
    each held-out event's DR term is unbiased), SNIPS when ``train`` is too small for one
    (``scored``: that model, its ``q̂`` and both policies' pmfs, already computed)."""
    if scored is None:
        scored = HeldOutScores.of((candidate, champion), holdout, train)
    inputs = {
        name: policy_inputs(policy, holdout, scored.model, scored.pmfs[id(policy)], scored.q)
        for name, policy in (("candidate", candidate), ("champion", champion))
    }
    paired = paired_difference(inputs["candidate"], inputs["champion"], cfg.alpha, cfg.min_lift)
    return gate(paired, len(holdout), cfg.min_events, champion_is_logging, cfg.min_lift)


def batch_pmfs(policy: Any, batch: LoggedBatch) -> list[np.ndarray] | None:
    """``policy.pmf`` of every row of ``batch`` computed in bulk, or ``None`` when the policy
    has no bulk path. A :class:`~policies.bulk.BulkLearner` scores the whole batch from its
    columnar shared features; a ``context_free`` policy (``uniform``, ``rules``) depends only
    on the decision point and the action list, so each distinct pair is asked once."""

    if isinstance(policy, BulkLearner):
        return policy.pmf_logged(batch, shared_features(batch.contexts))
    if getattr(policy, "context_free", False):
        memo: dict[tuple[int, str], tuple[Any, np.ndarray]] = {}
        out = []
        for ctx, acts in zip(batch.contexts, batch.actions, strict=True):
            key = (id(acts), ctx.decision_point)
            hit = memo.get(key)
            if hit is None or hit[0] is not acts:
                hit = memo[key] = (acts, policy.pmf(ctx, acts))
            out.append(hit[1])
        return out
    return None
