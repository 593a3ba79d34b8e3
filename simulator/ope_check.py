"""Checking the off-policy estimators against the simulator's exact truth.

Data are logged in the journey simulator under a fixed logging policy; each target
policy's value on those very rounds is known exactly from the simulator's true
expected rewards,

    V(π) = (1/n) Σ_i Σ_a π(a | x_i) q*(x_i, a),

so every estimator's error ``V̂ − V`` is measured, not guessed. Repeated over seeds
and data sizes this gives each estimator's bias, RMSE and interval coverage, and
shows the error shrinking as logged data grow.

References:
    Saito et al., *Open Bandit Dataset and Pipeline*, NeurIPS Datasets and
    Benchmarks (2021) — the same synthetic-truth protocol.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from policies.base import BasePolicy
from policies.types import LoggedBatch
from simulator.environment import Environment
from simulator.run import build_policy, run_policy
from training.ope import ESTIMATORS, RidgeRewardModel, evaluate


@dataclass(frozen=True)
class ErrorRow:
    """One estimate of one target policy's value, against the truth. ``estimate`` (and
    the interval) is ``None`` when the estimator could not be computed on the logs (no
    logged action the target supports, say); ``reason`` then says why."""

    seed: int
    n: int
    target: str
    estimator: str
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    truth: float
    reason: str | None = None

    @property
    def estimable(self) -> bool:
        return self.estimate is not None

    @property
    def error(self) -> float:
        """``V̂ − V``; ``nan`` without an estimate."""
        return self.estimate - self.truth if self.estimate is not None else float("nan")

    @property
    def covered(self) -> bool:
        """Whether the interval covers the truth (``False`` without an interval)."""
        if self.ci_low is None or self.ci_high is None:
            return False
        return self.ci_low <= self.truth <= self.ci_high


@dataclass(frozen=True)
class ValidationResult:
    rows: tuple[ErrorRow, ...]
    logging_policy: str

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """``{str(n): {estimator: {"bias", "rmse", "coverage", "runs", "not_estimable",
        "biased"}}}`` over seeds and targets. Bias, RMSE and coverage are over the runs
        with an estimate (``runs`` of them; ``nan`` when none had one), and
        ``not_estimable`` counts the runs without, so a null answer is neither scored as
        an error nor hidden. ``biased`` (1.0) marks clipped IPS and Switch-DR, whose
        intervals cover an altered quantity, so their coverage is not meant to be 95%."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for n in sorted({r.n for r in self.rows}):
            out[str(n)] = {}
            for name in dict.fromkeys(r.estimator for r in self.rows):
                rows = [r for r in self.rows if r.n == n and r.estimator == name]
                done = [r for r in rows if r.estimable]
                errs = np.array([r.error for r in done])
                nan = float("nan")
                out[str(n)][name] = {
                    "bias": float(errs.mean()) if done else nan,
                    "rmse": float(np.sqrt(np.mean(errs**2))) if done else nan,
                    "coverage": float(np.mean([r.covered for r in done])) if done else nan,
                    "runs": len(done),
                    "not_estimable": len(rows) - len(done),
                    "biased": float(ESTIMATORS[name].biased),
                }
        return out

    def rmse(self, estimator: str, n: int) -> float:
        """RMSE of ``estimator`` at size ``n`` over the runs with an estimate (``nan``
        when none had one)."""
        errs = np.array(
            [r.error for r in self.rows if r.n == n and r.estimator == estimator and r.estimable]
        )
        return float(np.sqrt(np.mean(errs**2))) if len(errs) else float("nan")


def _prefix(batch: LoggedBatch, n: int) -> LoggedBatch:
    return LoggedBatch(
        batch.contexts[:n],
        batch.actions[:n],
        batch.chosen[:n],
        batch.probabilities[:n],
        batch.rewards[:n],
    )


def validate(
    env: Environment,
    targets: Mapping[str, BasePolicy],
    sizes: Sequence[int] = (500, 2_000),
    seeds: Sequence[int] = (0, 1, 2),
    logging_kind: str = "uniform",
    estimators: Sequence[str] | None = None,
    alpha: float = 0.05,
) -> ValidationResult:
    """Log ``max(sizes)`` rounds per seed under ``logging_kind`` (not learning), then
    estimate each frozen target policy's value on the first ``n`` rounds for each size.

    DM, DR and Switch-DR use a :class:`training.ope.RidgeRewardModel` fitted on the
    same ``n`` logged rounds.
    """
    names = list(estimators or ESTIMATORS)
    rows: list[ErrorRow] = []
    horizon = max(sizes)
    for seed in seeds:
        logger = build_policy(logging_kind, env.catalog, seed)
        log = run_policy(logger, env, horizon, seed=seed, learn=False, keep_batch=True)
        assert log.batch is not None and log.truths is not None
        for target_name, policy in targets.items():
            pmfs = [
                np.asarray(policy.pmf(c, a), dtype=float)
                for c, a in zip(log.batch.contexts, log.batch.actions, strict=True)
            ]
            # π(a_i | x_i) from the same pmfs (what training.ope.policy_inputs computes)
            target_probs = np.array(
                [p[int(i)] for p, i in zip(pmfs, log.batch.chosen, strict=True)]
            )
            true_per_round = np.array([p @ t for p, t in zip(pmfs, log.truths, strict=True)])
            for n in sizes:
                sub = _prefix(log.batch, n)
                model = RidgeRewardModel().fit(sub)
                ql = np.empty(n)
                qt = np.empty(n)
                for i in range(n):
                    q = model(sub.contexts[i], sub.actions[i])
                    ql[i] = q[int(sub.chosen[i])]
                    qt[i] = float(pmfs[i] @ q)
                est = evaluate(
                    sub.rewards,
                    sub.probabilities,
                    target_probs[:n],
                    ql,
                    qt,
                    alpha,
                    names,
                )
                truth = float(true_per_round[:n].mean())
                for name, e in est.items():
                    rows.append(
                        ErrorRow(
                            seed, n, target_name, name, e.value, e.ci_low, e.ci_high, truth,
                            e.reason,
                        )
                    )
    return ValidationResult(tuple(rows), logging_kind)


def validate_for_report(
    env: Environment,
    targets: Mapping[str, BasePolicy],
    sizes: Sequence[int],
    seeds: Sequence[int],
    logging_kind: str = "uniform",
) -> dict[str, object]:
    """:func:`validate`, summarised for ``maestro simulate``'s report."""
    result = validate(env, targets, sizes=sizes, seeds=seeds, logging_kind=logging_kind)
    return {"by_size": result.summary()}
