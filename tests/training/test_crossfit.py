"""The cross-fitted gate's bookkeeping: folds cover every event once, each fold's
candidate never sees that fold's events, and an A/A comparison is exactly zero."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from policies.registry import make_policy
from policies.types import Action, Context, LoggedBatch
from training.crossfit import crossfit_gate, crossfit_inputs, fold_slices
from training.data import TrainingSet
from training.train import all_pmfs

ACTIONS = [Action("a", "email", {}), Action("b", "push", {}), Action("c", "none", {})]


def _batch(n: int, seed: int = 0) -> LoggedBatch:
    rng = np.random.default_rng(seed)
    contexts = [
        Context(f"c-{i}", {"x": float(rng.random())}, decision_point="cart_abandoned")
        for i in range(n)
    ]
    chosen = rng.integers(0, 3, n)
    rewards = (chosen == 0) * 1.0 + rng.normal(0, 0.1, n)
    return LoggedBatch(contexts, [ACTIONS] * n, chosen, np.full(n, 1 / 3), rewards)


@pytest.mark.parametrize("n,folds", [(8, 4), (10, 4), (2150, 4), (101, 3), (40, 10)])
def test_folds_cover_every_event_once_in_order(n: int, folds: int) -> None:
    parts = fold_slices(n, folds)
    assert len(parts) == folds and parts[0].start == 0 and parts[-1].stop == n
    assert all(a.stop == b.start for a, b in pairwise(parts))
    sizes = [p.stop - p.start for p in parts]
    assert max(sizes) - min(sizes) <= 1


def test_the_last_fold_is_the_split_of_maestro_train() -> None:
    """``_train_point`` shows the OPE table on ``ts.split(1 - start / n)``: exactly the
    last fold, whatever the rounding."""
    for n in (8, 10, 13, 2150, 2151):
        start = fold_slices(n, 4)[-1].start
        cut = max(1, min(n - 1, round(n * (1.0 - (1.0 - start / n)))))  # TrainingSet.split
        assert cut == start, n
    assert TrainingSet.split  # the split this mirrors


def test_each_fold_candidate_learns_only_from_the_other_folds() -> None:
    batch = _batch(400)
    seen: list[set[int]] = []

    def make(rows: LoggedBatch):
        seen.append({id(c) for c in rows.contexts})
        return make_policy("uniform")

    champion = make_policy("uniform")
    cand, champ, fitted = crossfit_inputs(make, champion, batch, 4, all_pmfs)
    assert len(fitted) == 4 and len(cand.rewards) == len(champ.rewards) == 400
    np.testing.assert_array_equal(cand.rewards, np.asarray(batch.rewards))  # order kept
    for part, ids in zip(fold_slices(400, 4), seen, strict=True):
        held = {id(c) for c in batch.contexts[part]}
        assert len(ids) == 400 - len(held) and not ids & held
    assert cand.q_logged is not None  # every fold trains on >= 20 rows: DR


def test_a_policy_against_itself_is_exactly_zero_and_a_better_one_passes() -> None:
    batch = _batch(3000, seed=1)
    rules = make_policy("rules", priorities={"cart_abandoned": ["c", "b", "a"]})
    same, _ = crossfit_gate(lambda rows: rules, rules, batch, 4, all_pmfs, 0.05, 200, 0.0, False)
    assert (same.paired.diff, same.paired.ci_low, same.passed) == (0.0, 0.0, False)
    assert "cross-fitted over 4 chronological folds" in same.summary()
    better = make_policy("rules", priorities={"cart_abandoned": ["a", "b", "c"]})
    up, _ = crossfit_gate(lambda rows: better, rules, batch, 4, all_pmfs, 0.05, 200, 0.0, False)
    # true lift: (0.95 + 0.05/3) − (0.05/3) on rewards 1 for "a", 0 otherwise = 0.95
    assert up.passed and up.paired.ci_low <= 0.95 <= up.paired.ci_high
    assert abs(up.paired.diff - 0.95) < 0.1
