"""The cross-fitted paired gate: every logged event is held out exactly once.

A single chronological split spends three quarters of the logs on training and leaves
the gate a quarter to estimate ``V(candidate) − V(champion)``; with an exploring but
still mostly greedy logging policy the per-event spread of the doubly robust difference
is large, so a quarter of a few thousand events cannot clear zero on a real improvement.
Cross-fitting (Chernozhukov, Chetverikov, Demirer, Duflo, Hansen, Newey & Robins,
*Double/debiased machine learning for treatment and structural parameters*, The
Econometrics Journal 21, 2018; for policies, Athey & Wager, *Policy Learning With
Observational Data*, Econometrica 89, 2021) splits the events into ``K`` contiguous
chronological folds; for fold ``k`` the candidate *and* the reward model ``q̂`` (gradient
boosted trees, :class:`training.reward_model.BoostedRewardModel`) are fitted on the other
folds only, and the DR terms of fold ``k``'s events are computed
with them. Each event's term is therefore out of sample for everything fitted, exactly
as in a held-out split, and the gate averages the ``n`` terms of all folds (the pooled
"DML2" form) with the normal interval of :mod:`training.paired`.

What the interval is about: the mean true lift over the champion of the ``K`` fold
candidates, each trained on ``(K − 1)/K`` of the events, i.e. of the *training
procedure* on this much data (Bates, Hastie & Tibshirani, *Cross-validation: what does
it estimate and how well does it do it?*, JASA 2023). The candidate registered and
promoted is the same procedure trained on all events, which has more data than any fold
candidate; the simulator's trials (:mod:`simulator.gate_trial`) check that promoted
candidate against the truth. Candidates are not warm-started from the champion here: a
champion trained on earlier logs has seen events of the folds it would be evaluated on,
which would leak them into the fold candidates; every event is in the candidate's own
training data instead. A champion that learned from these events is evaluated in sample,
which can only flatter it, so the gate errs toward not promoting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from policies.types import LoggedBatch
from training.gate import GateVerdict, gate
from training.ope.policy_eval import PolicyInputs, policy_inputs
from training.paired import paired_difference

#: The fewest training rows a fold's reward model is fitted on (fewer: SNIPS, no model).
MIN_MODEL_ROWS = 20


def fold_slices(n: int, folds: int) -> list[slice]:
    """``folds`` contiguous, chronological blocks covering ``range(n)``, sizes within one."""
    bounds = [(k * n) // folds for k in range(folds + 1)]
    return [slice(bounds[k], bounds[k + 1]) for k in range(folds)]


def take(batch: LoggedBatch, rows: Sequence[int] | slice) -> LoggedBatch:
    """The rows ``rows`` of ``batch`` (a slice, or indices in order)."""
    if isinstance(rows, slice):
        return LoggedBatch(
            batch.contexts[rows],
            batch.actions[rows],
            np.asarray(batch.chosen)[rows],
            np.asarray(batch.probabilities)[rows],
            np.asarray(batch.rewards)[rows],
        )
    idx = list(rows)
    return LoggedBatch(
        [batch.contexts[i] for i in idx],
        [batch.actions[i] for i in idx],
        np.asarray(batch.chosen)[idx],
        np.asarray(batch.probabilities)[idx],
        np.asarray(batch.rewards)[idx],
    )


def complement(n: int, part: slice) -> list[int]:
    """Every row index of ``range(n)`` outside ``part``, in order."""
    return [*range(0, part.start), *range(part.stop, n)]


def _concat(parts: list[PolicyInputs], with_model: bool) -> PolicyInputs:
    def cat(name: str) -> np.ndarray:
        return np.concatenate([np.asarray(getattr(p, name), dtype=float) for p in parts])

    return PolicyInputs(
        cat("rewards"),
        cat("logging_probs"),
        cat("target_probs"),
        cat("q_logged") if with_model else None,
        cat("q_target") if with_model else None,
    )


def crossfit_inputs(
    make_candidate: Callable[[LoggedBatch], Any],
    champion: Any,
    batch: LoggedBatch,
    folds: int,
    pmfs: Callable[[Any, LoggedBatch], list[np.ndarray]],
) -> tuple[PolicyInputs, PolicyInputs, list[Any]]:
    """The candidate's and the champion's :class:`PolicyInputs` on every event of
    ``batch``, each fold's from the candidate and ``q̂`` fitted on the other folds
    (module docstring), and the ``folds`` fold candidates, oldest fold first.
    ``pmfs(policy, rows)``: the policy's pmf of every row."""
    from training.reward_model import BoostedRewardModel

    n = len(batch)
    parts = fold_slices(n, folds)
    with_model = all(n - (p.stop - p.start) >= MIN_MODEL_ROWS for p in parts)
    cand_parts, champ_parts, candidates = [], [], []
    for part in parts:
        train, held = take(batch, complement(n, part)), take(batch, part)
        candidate = make_candidate(train)
        model = BoostedRewardModel().fit(train) if with_model else None
        q = model.predict_rows(held.contexts, held.actions) if model is not None else None
        cand_parts.append(policy_inputs(candidate, held, model, pmfs(candidate, held), q))
        champ_parts.append(policy_inputs(champion, held, model, pmfs(champion, held), q))
        candidates.append(candidate)
    return _concat(cand_parts, with_model), _concat(champ_parts, with_model), candidates


def crossfit_gate(
    make_candidate: Callable[[LoggedBatch], Any],
    champion: Any,
    batch: LoggedBatch,
    folds: int,
    pmfs: Callable[[Any, LoggedBatch], list[np.ndarray]],
    alpha: float,
    min_events: int,
    min_lift: float,
    champion_is_logging: bool,
) -> tuple[GateVerdict, list[Any]]:
    """The gate's verdict on the cross-fitted paired difference over every event of
    ``batch`` (module docstring), and the fold candidates."""
    cand, champ, candidates = crossfit_inputs(make_candidate, champion, batch, folds, pmfs)
    paired = paired_difference(cand, champ, alpha, min_lift)
    verdict = gate(paired, len(batch), min_events, champion_is_logging, min_lift)
    note = (
        f"cross-fitted over {folds} chronological folds: every event held out once, "
        "the candidate and reward model of each fold fitted on the others"
    )
    return replace(verdict, reasons=(*verdict.reasons, note)), candidates
