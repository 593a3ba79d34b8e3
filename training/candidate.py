"""Train a candidate policy on logged events, with the training defaults of its kind.

:func:`train_candidate` is the one place a candidate is built (fresh, or warm-started from
the champion) and fed the logs; :func:`candidate_fitter` wraps it for ``maestro train``
with the progress bar and the decision point's exploration floor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from policies.base import BasePolicy
from policies.bulk import BulkLearner
from policies.draw import raise_floor
from policies.registry import load_policy, make_policy
from policies.types import LoggedBatch
from training.columns import shared_features


class TrainConfigLike(Protocol):
    """The fields of :class:`training.train.TrainConfig` a candidate's training reads."""

    warm_start: bool
    seed: int
    kind: str
    params: dict[str, Any]


#: Hyper-parameters a candidate of a kind is trained with unless ``TrainConfig.params``
#: says otherwise. ``vw-cb``: VW's default learning rate 0.5 overshoots on rewards worth
#: tens (a converted cart). In the journey simulator (seeds 5–18, floor 0.3, trained on
#: the older 75% of ≈2,150 ``cart_abandoned`` events), the true lift over the ``rules``
#: champion was +0.065 at 0.5, +0.152 at 0.05 and +0.168 at 0.02 (+0.144 at 0.02 without
#: the quadratic interactions, which are kept).
TRAINING_PARAMS: dict[str, dict[str, Any]] = {"vw-cb": {"learning_rate": 0.02}}


def train_candidate(
    kind: str,
    train_batch: LoggedBatch,
    champion: BasePolicy | None,
    cfg: TrainConfigLike,
    progress: Callable[[int], None] | None = None,
    chunk: int = 2000,
    bulk: bool = True,
) -> BasePolicy:
    """A candidate of ``kind`` trained on ``train_batch``. With ``bulk``, a candidate that
    learns in bulk (:class:`~policies.bulk.BulkLearner`) learns the whole batch at once
    from its columnar shared features: the same model as ``candidate.learn``."""
    if champion is not None and cfg.warm_start and champion.kind == kind and champion.warm_starts:
        candidate = load_policy(champion.save())
    else:
        candidate = make_policy(
            kind, seed=cfg.seed, **{**TRAINING_PARAMS.get(kind, {}), **cfg.params}
        )
    # the features it learns from: a feature declared later is ignored when it serves
    candidate.record_inputs(sorted(set().union(*(c.customer for c in train_batch.contexts))))
    if bulk and isinstance(candidate, BulkLearner):
        features = shared_features(train_batch.contexts)
        candidate.learn_logged(train_batch, features, progress, chunk)
        return candidate
    n = len(train_batch)
    for start in range(0, n, chunk):
        part = slice(start, min(n, start + chunk))
        candidate.learn(
            LoggedBatch(
                train_batch.contexts[part],
                train_batch.actions[part],
                train_batch.chosen[part],
                train_batch.probabilities[part],
                train_batch.rewards[part],
            )
        )
        if progress is not None:
            progress(part.stop - part.start)
    return candidate


def candidate_fitter(
    cfg: TrainConfigLike,
    floor: float,
    progress_factory: Callable[[int, str], Any] | None,
    dp: str,
) -> Callable[[LoggedBatch, BasePolicy | None], BasePolicy]:
    """``fit(rows, champion)``: a candidate trained on ``rows`` (warm-started from
    ``champion`` when it may be), raised to the decision point's floor ``floor``, so it is
    evaluated, registered and served with the exploration budget."""

    def fit(rows: LoggedBatch, champion: BasePolicy | None) -> BasePolicy:
        bar = progress_factory(len(rows), f"train {dp}") if progress_factory else None
        candidate = train_candidate(cfg.kind, rows, champion, cfg, bar.update if bar else None)
        if bar is not None:
            bar.close()
        raise_floor(candidate, floor)
        return candidate

    return fit
