"""``maestro train``: logs → candidate policy → off-policy evaluation → gate → MLflow.

For each decision point with data: a candidate of the chosen kind trained on every joined
event (with the training defaults of :mod:`training.candidate`), the gate cross-fitted
over ``folds`` chronological folds (:mod:`training.crossfit`: every event held out once,
so the gate sees four times the events of a 25% split), and every estimator of
:mod:`training.ope` run for the candidate of the last fold (trained on the older events),
the champion, ``uniform`` and ``rules`` on the newest fold. Cross-fitting trains
``folds`` candidates more than a split does, so it is used where events are scarce:
below ``crossfit_below`` events of a decision point (20,000 by default; a 25% split of
more holds out over 5,000). With ``folds=1``, too few events or more than that, the
single split: a chronological split, the last ``holdout`` share held out, the candidate
trained on the rest (``vw-cb`` warm-started from a ``vw-cb`` champion). The
candidate is registered in MLflow either way; with ``promote`` the ``champion`` alias
moves only when the gate passes.

The gate (:mod:`training.gate`): the 95% interval of the paired difference candidate −
champion on the same held-out events (:mod:`training.paired`: DR per-event terms, SNIPS
with the delta method when no reward model could be fitted) must lie above ``min_lift``,
on at least ``min_events`` held-out events worth as many effective ones. The candidate
carries its decision point's exploration floor from the catalog (raised to it, never
lowered), so it is evaluated, registered and served with the exploration budget that
keeps the next evaluation possible. Every evaluation also carries support and overlap
diagnostics; clipped IPS and Switch-DR, estimators of a biased quantity, are never bounds.
"""

from __future__ import annotations

import gc
import hashlib
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from policies.base import BasePolicy
from policies.catalog import Catalog
from policies.draw import raise_floor
from policies.registry import load_policy, make_policy
from policies.types import LoggedBatch
from training import tracking
from training.candidate import candidate_fitter
from training.candidate import train_candidate as train_candidate  # re-exported
from training.crossfit import fold_slices
from training.data import Activated, TrainingSet, load_training_set
from training.gate import GateVerdict
from training.heldout import HeldOutScores, evaluate_all, paired_gate
from training.heldout import all_pmfs as all_pmfs  # re-exported
from training.heldout import batch_pmfs as batch_pmfs  # re-exported
from training.ope import diagnostics_of, table

COMPARED = ("candidate", "champion", "uniform", "rules")


@dataclass(frozen=True)
class TrainConfig:
    kind: str = "vw-cb"
    holdout: float = 0.25
    min_events: int = 200
    min_lift: float = 0.0
    alpha: float = 0.05
    warm_start: bool = True
    promote: bool = False
    reward_mode: str = "first"
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    folds: int = 4
    crossfit_below: int = 20_000

    def __post_init__(self) -> None:
        if not 0.05 <= self.holdout <= 0.9:
            raise ValueError("holdout must lie in [0.05, 0.9]")
        if not 1 <= self.folds <= 20:
            raise ValueError("folds must lie in [1, 20]")
        if self.min_events < 1:
            raise ValueError("min_events must be >= 1")
        if not (math.isfinite(self.min_lift) and self.min_lift >= 0.0):
            raise ValueError("min_lift must be a finite number >= 0")


@dataclass(frozen=True)
class TrainResult:
    decision_point: str
    kind: str
    run_id: str
    version: str
    promoted: bool
    verdict: GateVerdict
    ope: dict[str, dict[str, dict[str, float]]]
    n_train: int
    n_holdout: int
    data_digest: str
    log_report: dict[str, object]
    diagnostics: dict[str, dict[str, Any]] = field(default_factory=dict)


class LoggingPolicy:
    """The logging policy itself, from the logged pmfs (its on-policy value)."""

    kind = "logged"
    version = "logged"

    def __init__(self, logged: TrainingSet) -> None:
        self._by_context = {
            id(c): p for c, p in zip(logged.batch.contexts, logged.logging_pmfs, strict=True)
        }

    def pmf(self, context: Any, actions: Any) -> np.ndarray:
        return self._by_context[id(context)]


def digest(ts: TrainingSet) -> str:
    """SHA-256 of ``<event id>:<reward>;`` over the rows, in order (one update of the
    whole text: the same digest as one update per row)."""
    rows = zip(ts.frame["event_id"].tolist(), ts.frame["reward"].tolist(), strict=True)
    text = "".join([f"{event_id}:{reward!r};" for event_id, reward in rows])
    return hashlib.sha256(text.encode()).hexdigest()


def run_training(
    logs_dir: Any,
    catalog: Catalog,
    tracking_uri: str,
    cfg: TrainConfig,
    decision_point: str | None = None,
    now: float | None = None,
    progress_factory: Callable[[int, str], Any] | None = None,
    activated: Activated | None = None,
) -> list[TrainResult]:
    """Train, evaluate, register (and maybe promote) one candidate per decision point
    (``activated``: :func:`training.data.join_logs`)."""
    with _gc_paused():
        return _run_training(
            logs_dir, catalog, tracking_uri, cfg, decision_point, now, progress_factory,
            activated,
        )


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while logs become objects: each of its passes
    walks every live context and feature dict, which cost as much as building them.
    Reference counting still frees everything; cycles wait until the collector resumes."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _run_training(
    logs_dir: Any,
    catalog: Catalog,
    tracking_uri: str,
    cfg: TrainConfig,
    decision_point: str | None,
    now: float | None,
    progress_factory: Callable[[int, str], Any] | None,
    activated: Activated | None = None,
) -> list[TrainResult]:
    now = time.time() if now is None else now
    full = load_training_set(logs_dir, catalog, now, decision_point, cfg.reward_mode, activated)
    points = (
        sorted(set(full.frame["decision_point"])) if decision_point is None else [decision_point]
    )
    results = []
    for dp in points:
        mask = (full.frame["decision_point"] == dp).to_numpy()
        ts = full.subset(mask)
        if len(ts) < 2:
            continue
        results.append(_train_point(dp, ts, full, catalog, tracking_uri, cfg, progress_factory))
    return results


def _train_point(
    dp: str,
    ts: TrainingSet,
    full: TrainingSet,
    catalog: Catalog,
    tracking_uri: str,
    cfg: TrainConfig,
    progress_factory: Callable[[int, str], Any] | None,
) -> TrainResult:
    """Train, evaluate and register one candidate on ``ts``, the rows of decision point
    ``dp`` (``full`` is every joined row, for its log report)."""
    champ_bytes = tracking.load_champion_bytes(dp, tracking_uri)
    champion = load_policy(champ_bytes[0]) if champ_bytes else None
    floor = catalog[dp].exploration_floor
    if champion is not None:  # evaluated as served: with the budget
        raise_floor(champion, floor)
    crossfit = cfg.folds > 1 and 2 * cfg.folds <= len(ts) < cfg.crossfit_below
    # under cross-fitting the OPE table's rows are exactly the last fold
    last = fold_slices(len(ts), cfg.folds)[-1].start / len(ts) if crossfit else 0.0
    train, holdout = ts.split(1.0 - last if crossfit else cfg.holdout)
    fit = candidate_fitter(cfg, floor, progress_factory, dp)
    if crossfit:
        candidate, verdict, shown = _crossfitted(ts, champion, holdout, cfg, fit)
    else:
        candidate = shown = fit(train.batch, champion)
    compared = _compared(shown, champion, holdout, catalog)
    # one reward model, one q̂ and one pmf per policy for the OPE table and the gate
    scored = HeldOutScores.of(compared.values(), holdout.batch, train.batch)
    if not crossfit:
        verdict = paired_gate(candidate, compared["champion"], holdout.batch, train.batch, cfg,
                              champion is None, scored)  # fmt: skip
    estimates = evaluate_all(compared, holdout, train, cfg.alpha, scored=scored)
    ope = {name: table(est) for name, est in estimates.items()}
    diagnostics = {name: _diagnostics(est) for name, est in estimates.items()}
    data_digest = digest(ts)
    promote = cfg.promote and verdict.passed
    run_id, version = tracking.register_policy(
        candidate.save(),
        dp,
        tracking_uri,
        kind=cfg.kind,
        params={
            **candidate.params,
            "holdout": cfg.holdout,
            "min_events": cfg.min_events,
            "min_lift": cfg.min_lift,
            "warm_start": bool(champion is not None and cfg.warm_start and not crossfit),
            "folds": cfg.folds if crossfit else 1,
        },
        metrics=_run_metrics(
            {k: {**per, "diagnostics": diagnostics[k]} for k, per in ope.items()},
            len(train),
            len(holdout),
            verdict,
        ),
        tags={
            "data.digest": data_digest,
            "data.rows": str(len(ts)),
            "gate.verdict": verdict.summary()[:4000],
            "gate.estimator": verdict.estimator,
            "champion.version": champ_bytes[1].version if champ_bytes else "none",
        },
        run_name=f"train-{dp}-{cfg.kind}",
        champion=promote,
    )
    return TrainResult(
        dp,
        cfg.kind,
        run_id,
        version,
        promote,
        verdict,
        ope,
        len(train),
        len(holdout),
        data_digest,
        full.report.as_dict(),
        diagnostics,
    )


def _crossfitted(
    ts: TrainingSet,
    champion: BasePolicy | None,
    holdout: TrainingSet,
    cfg: TrainConfig,
    fit: Callable[[LoggedBatch, BasePolicy | None], BasePolicy],
) -> tuple[BasePolicy, GateVerdict, BasePolicy]:
    """The candidate trained on every event of ``ts`` (not warm-started:
    :mod:`training.crossfit`), the cross-fitted gate's verdict, and the last fold's
    candidate (trained on every event before ``holdout``, for the OPE table)."""
    from training.crossfit import crossfit_gate

    verdict, folds = crossfit_gate(
        lambda rows: fit(rows, None),
        champion if champion is not None else LoggingPolicy(ts),
        ts.batch,
        cfg.folds,
        all_pmfs,
        cfg.alpha,
        cfg.min_events,
        cfg.min_lift,
        champion is None,
    )
    return fit(ts.batch, None), verdict, folds[-1]


def _diagnostics(estimates: dict[str, Any]) -> dict[str, Any]:
    """The support and overlap diagnostics of one policy's evaluation, as a dict."""
    diag = diagnostics_of(estimates)
    return diag.as_dict() if diag is not None else {}


def _compared(
    candidate: BasePolicy, champion: BasePolicy | None, holdout: TrainingSet, catalog: Catalog
) -> dict[str, Any]:
    """The policies of :data:`COMPARED`; without a registered champion, the logging policy
    stands in for it."""
    return {
        "candidate": candidate,
        "champion": champion if champion is not None else LoggingPolicy(holdout),
        "uniform": make_policy("uniform"),
        "rules": make_policy("rules", priorities=catalog.journey_priorities()),
    }


def _run_metrics(
    ope: dict[str, dict[str, dict[str, float]]], n_train: int, n_holdout: int, verdict: GateVerdict
) -> dict[str, float]:
    """The MLflow metrics of a training run: ``<policy>.<estimator>.<key>`` for every finite
    number of the OPE table (flags aside), the row counts and whether the gate passed."""
    metrics = {
        f"{name}.{est}.{key}": value
        for name, per in ope.items()
        for est, row in per.items()
        for key, value in row.items()
        if isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    }
    metrics.update(n_train=n_train, n_holdout=n_holdout, gate_passed=float(verdict.passed))
    metrics.update(verdict.metrics())
    return metrics
