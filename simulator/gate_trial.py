"""The promotion gate against the simulator's truth, and what an exploration floor costs.

A trial logs ``steps`` decisions in the journey simulator under the cold-start champion
(``rules`` with the catalog's journeys and an exploration floor) and runs the gate of
``maestro train --promote`` at one decision point: by default, as ``maestro train`` does,
cross-fitted (:mod:`training.crossfit`), the candidate judged being the one trained on
every row; with ``folds=1`` on a chronological split (the last ``holdout`` share held
out, the candidate trained on the rest). Because the simulator knows every action's true
expected reward on every row, the candidate's true lift over the champion on the rows
judged is exact (``V(π) = (1/n) Σ_i Σ_a π(a | x_i) q*(x_i, a)``, as in :mod:`simulator.ope_check`),
so a promotion is known to be right or wrong.

Candidates: ``vw-cb`` (learned from the training rows), ``better`` (``rules`` with the
journey the truth ranks best: actions ordered by their mean true expected reward on the
training rows, a known improvement), ``aa`` (the champion itself: an A/A comparison) and
``worse`` (the journeys reversed: ``rules`` taking the catalog's last actions first).

The floor's cost (:func:`floor_cost`): on the logged rows, the champion with floor ``f``
is worth exactly ``(1 − f)·V(greedy) + f·V(uniform)``, so each decision gives up
``f·(V(greedy) − V(uniform))`` of true expected reward.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from policies.base import BasePolicy
from policies.catalog import Catalog
from policies.draw import raise_floor
from policies.registry import make_policy
from policies.types import LoggedBatch
from simulator.environment import EnvConfig, JourneyEnvironment
from simulator.run import RunLog, run_policy
from training.candidate import train_candidate
from training.crossfit import crossfit_gate, take
from training.gate import GateVerdict
from training.heldout import all_pmfs, batch_pmfs, paired_gate
from training.train import TrainConfig

CANDIDATES = ("vw-cb", "better", "aa", "worse")


@dataclass(frozen=True)
class TrialResult:
    """One gate decision and the truth about it."""

    seed: int
    floor: float
    candidate: str
    verdict: GateVerdict
    true_lift: float
    n_train: int

    @property
    def promoted(self) -> bool:
        return self.verdict.passed

    @property
    def false_promotion(self) -> bool:
        return self.promoted and self.true_lift <= 0.0


def champion_policy(catalog: Catalog, floor: float, reverse: bool = False) -> BasePolicy:
    """The cold-start ``rules`` champion with ``floor`` (``reverse``: journeys reversed,
    the catalog's last actions first)."""
    priorities = catalog.journey_priorities()
    if reverse:
        priorities = {dp: [a.id for a in catalog[dp].actions][::-1] for dp in catalog.names()}
    policy = make_policy("rules", priorities=priorities)
    policy.exploration_floor = 0.0
    raise_floor(policy, floor)
    return policy


def log_traffic(catalog: Catalog, floor: float, steps: int, customers: int, seed: int) -> RunLog:
    """``steps`` decisions logged under the cold-start champion with ``floor``."""
    env = JourneyEnvironment(EnvConfig(customers=customers), catalog)
    champion = champion_policy(catalog, floor)
    return run_policy(champion, env, steps, seed=seed, learn=False, keep_batch=True)


def _rows(log: RunLog, point: str) -> tuple[LoggedBatch, list[np.ndarray]]:
    assert log.batch is not None and log.truths is not None
    keep = np.flatnonzero(log.decision_points == point).tolist()
    return take(log.batch, keep), [log.truths[i] for i in keep]


def true_value(policy: BasePolicy, batch: LoggedBatch, truths: list[np.ndarray]) -> float:
    """``(1/n) Σ_i π(·|x_i) · q*(x_i, ·)``: the policy's exact value on these rows."""
    pmfs = batch_pmfs(policy, batch)
    if pmfs is None:
        pmfs = [policy.pmf(c, a) for c, a in zip(batch.contexts, batch.actions, strict=True)]
    return float(np.mean([np.dot(p, t) for p, t in zip(pmfs, truths, strict=True)]))


def gate_trial(
    log: RunLog,
    catalog: Catalog,
    floor: float,
    candidate: str,
    seed: int,
    point: str = "cart_abandoned",
    cfg: TrainConfig | None = None,
) -> TrialResult:
    """One ``maestro train --promote`` decision at ``point`` on the logged run (module
    docstring), with the promoted candidate's true lift: cross-fitted over ``cfg.folds``
    folds as ``maestro train`` does by default (the trained candidate that would be
    promoted learns from every row, its lift is over every row), or with ``folds=1`` on a
    chronological split (its lift over the held-out rows)."""
    cfg = cfg or TrainConfig(kind="vw-cb", seed=seed)
    if candidate not in CANDIDATES:
        raise ValueError(f"candidate must be one of {CANDIDATES}, got {candidate!r}")
    batch, truths = _rows(log, point)
    n = len(batch)
    champion = champion_policy(catalog, floor)
    if cfg.folds > 1 and 2 * cfg.folds <= n < cfg.crossfit_below:  # as maestro train
        fixed = _fixed(catalog, floor, candidate, batch, truths, point)

        def make(rows: LoggedBatch) -> BasePolicy:
            return fixed if fixed is not None else _trained(rows, cfg, floor)

        verdict, _ = crossfit_gate(
            make, champion, batch, cfg.folds, all_pmfs, cfg.alpha, cfg.min_events,
            cfg.min_lift, False,
        )
        policy = make(batch)
        lift = true_value(policy, batch, truths) - true_value(champion, batch, truths)
        return TrialResult(seed, floor, candidate, verdict, lift, n)
    cut = max(1, min(n - 1, round(n * (1.0 - cfg.holdout))))  # as TrainingSet.split
    train, holdout = take(batch, slice(0, cut)), take(batch, slice(cut, None))
    fixed = _fixed(catalog, floor, candidate, train, truths[:cut], point)
    policy = fixed if fixed is not None else _trained(train, cfg, floor)
    verdict = paired_gate(policy, champion, holdout, train, cfg, False)
    held_truths = truths[cut:]
    lift = true_value(policy, holdout, held_truths) - true_value(champion, holdout, held_truths)
    return TrialResult(seed, floor, candidate, verdict, lift, len(train))


def _trained(rows: LoggedBatch, cfg: TrainConfig, floor: float) -> BasePolicy:
    policy = train_candidate("vw-cb", rows, None, cfg)
    raise_floor(policy, floor)
    return policy


def _fixed(
    catalog: Catalog,
    floor: float,
    candidate: str,
    rows: LoggedBatch,
    truths: list[np.ndarray],
    point: str,
) -> BasePolicy | None:
    """The candidate ``candidate`` when it is not learned from rewards (``better`` reads
    the true expected rewards of ``rows``), with ``floor``; ``None`` for ``vw-cb``."""
    if candidate == "vw-cb":
        return None
    if candidate == "better":
        policy = _truth_journey(catalog, rows, truths, point)
    else:
        policy = champion_policy(catalog, floor, reverse=candidate == "worse")
    raise_floor(policy, floor)
    return policy


def _truth_journey(
    catalog: Catalog, train: LoggedBatch, truths: list[np.ndarray], point: str
) -> BasePolicy:
    """``rules`` whose journey at ``point`` lists the actions by their mean true expected
    reward over the training rows where they were eligible, best first."""
    sums: dict[str, list[float]] = {}
    for actions, truth in zip(train.actions, truths, strict=True):
        for action, value in zip(actions, truth, strict=True):
            sums.setdefault(action.id, []).append(float(value))
    order = sorted(sums, key=lambda a: -float(np.mean(sums[a])))
    policy = make_policy("rules", priorities={**catalog.journey_priorities(), point: order})
    policy.exploration_floor = 0.0
    return policy


def floor_cost(log: RunLog, catalog: Catalog, floor: float) -> float:
    """True expected reward per decision the champion gives up with ``floor`` against the
    same champion without exploration, over every logged row (module docstring)."""
    assert log.batch is not None and log.truths is not None
    greedy = true_value(champion_policy(catalog, 0.0), log.batch, log.truths)
    uniform = true_value(make_policy("uniform"), log.batch, log.truths)
    return floor * (greedy - uniform)
