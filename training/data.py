"""From logs to training data: read the Parquet logs, join rewards, build a LoggedBatch.

The join follows the contract: rewards are joined to decisions by event id within the
decision point's reward window; a reward posted again counts once (first wins, or the
counted rewards are summed in ``sum`` mode); late rewards stay in the raw log but are
never learned from; a decision with no reward by the end of its window gets the
decision point's default reward; a decision whose window is still open and has no
reward yet is *pending* and left out. Features come from the log — what the policy saw
at decision time — and are never re-fetched.

Anything broken is skipped and counted, never fatal: unreadable Parquet files, orphan
rewards, propensities of 0, NaN or above 1, a pmf that does not match its action list.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.compiled import compiled_or
from policies.catalog import Catalog
from policies.types import LoggedBatch
from training.errors import TrainingDataError
from training.logs.dataset import LogReport, read_log
from training.logs.location import LogLocation
from training.logs.reader import (
    ROW_COLUMNS,
    T_EPOCH,
    TRAINING_COLUMNS,
    JoinCounts,
    RowParser,
    join_rows_py,
)
from training.logs.schema import (
    COUNTED,
    CUSTOMER_ID,
    DECISION_POINT,
    EVENT_ID,
    LATE,
    POLICY,
    POLICY_VERSION,
    REWARD,
    REWARD_DEADLINE,
    TIMESTAMP,
    VARIANT,
)

#: :func:`~training.logs.reader.join_rows_py`, compiled (``training._join``) when built
join_rows = compiled_or("training._join", "join_rows", join_rows_py)
#: event ids → those of them activated (the contact store's ``activated``)
Activated = Callable[[list[str]], AbstractSet[str]]

if TYPE_CHECKING:
    import pandas as pd


def _ts(series: pd.Series) -> np.ndarray:
    """Timestamps as float epoch seconds (datetime64, with or without zone, or numbers)."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(series):
        return series.to_numpy(dtype=float)
    if series.dtype in (np.dtype("datetime64[ns]"), pd.DatetimeTZDtype("ns", "UTC")):
        # nanoseconds since the epoch over 1e9, as ``total_seconds`` below computes it
        # (a zone does not change the instants); NaT goes the long way (NaN)
        ns = series.array.asi8
        if len(ns) and ns.min() != np.iinfo(np.int64).min:
            return ns / 1_000_000_000
    stamps = pd.to_datetime(series, utc=True)
    return (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=float)


def _rows_of(batch: LoggedBatch, contexts: list, actions: list, rows: object) -> LoggedBatch:
    """The rows ``rows`` (a slice or an index array) of ``batch``, already validated:
    built without re-checking every row (``LoggedBatch.__post_init__``)."""
    out = object.__new__(LoggedBatch)
    for name, value in (
        ("contexts", contexts),
        ("actions", actions),
        ("chosen", batch.chosen[rows]),  # type: ignore[index]
        ("probabilities", batch.probabilities[rows]),  # type: ignore[index]
        ("rewards", batch.rewards[rows]),  # type: ignore[index]
    ):
        object.__setattr__(out, name, value)
    return out


@dataclass(frozen=True)
class TrainingSet:
    """Joined rows, time-ordered. ``batch`` is what policies learn from; ``frame`` keeps the
    per-row metadata (event id, decision point, time, policy that logged it)."""

    batch: LoggedBatch
    frame: pd.DataFrame
    logging_pmfs: list[np.ndarray]
    report: LogReport

    def __len__(self) -> int:
        return len(self.batch)

    def split(self, holdout: float) -> tuple[TrainingSet, TrainingSet]:
        """Chronological split: the last ``holdout`` share is held out for evaluation."""
        n = len(self)
        cut = max(1, min(n - 1, round(n * (1.0 - holdout)))) if n > 1 else n
        return self._take(slice(0, cut)), self._take(slice(cut, n))

    def subset(self, mask: np.ndarray) -> TrainingSet:
        """The rows where ``mask`` (shape ``(n_rounds,)``, bool) is true, order kept."""
        if len(mask) == len(self) and bool(np.all(mask)):
            return self  # immutable: the whole set is its own subset
        idx = np.flatnonzero(mask)
        b = self.batch
        rows = idx.tolist()
        return TrainingSet(
            _rows_of(b, [b.contexts[i] for i in rows], [b.actions[i] for i in rows], idx),
            self.frame.iloc[idx].reset_index(drop=True),
            [self.logging_pmfs[i] for i in idx],
            self.report,
        )

    def _take(self, part: slice) -> TrainingSet:
        b = self.batch
        return TrainingSet(
            _rows_of(b, b.contexts[part], b.actions[part], part),
            self.frame.iloc[part].reset_index(drop=True),
            self.logging_pmfs[part],
            self.report,
        )


def join_logs(
    decisions: pd.DataFrame,
    rewards: pd.DataFrame,
    catalog: Catalog,
    now: float,
    report: LogReport | None = None,
    reward_mode: str = "first",
    decision_point: str | None = None,
    exclude_holdout: bool = True,
    activated: Activated | None = None,
) -> TrainingSet:
    """Join decisions and rewards (see module docstring) into a :class:`TrainingSet`.

    ``activated`` (event ids → those activated) leaves out the decisions of ``activation:
    required`` decision points that were never activated (counted ``skipped["inactive"]``):
    they were never shown. Whether an activation came before or after the reward does not
    matter: both are known by the time training reads them. ``None``: nothing left out.
    """
    report = report or LogReport()
    if decisions.empty:
        raise TrainingDataError("no logged decisions to train on")
    decisions = _learnable_decisions(decisions, report, decision_point, exclude_holdout)
    if activated is not None:
        decisions = _active_only(decisions, catalog, activated, report)
    reward_of = _reward_index(decisions, rewards, report, reward_mode)
    deadlines = _ts(decisions[REWARD_DEADLINE]) if REWARD_DEADLINE in decisions else None
    counts = JoinCounts(skipped=report.skipped)

    def default_reward(decision_point: str) -> float:
        point = catalog.decision_points.get(decision_point)
        return point.default_reward if point is not None else 0.0

    contexts, action_lists, chosen, probs, rewards_out, pmfs, keep = join_rows(
        RowParser(),
        [decisions[c].to_numpy().tolist() for c in ROW_COLUMNS],
        reward_of,
        None if deadlines is None else deadlines.tolist(),
        now,
        default_reward,
        counts,
    )
    report.rewarded += counts.rewarded
    report.defaulted += counts.defaulted
    report.pending += counts.pending
    if not contexts:
        raise TrainingDataError(f"no usable logged decisions (skipped: {dict(report.skipped)})")
    frame = decisions.iloc[keep][
        [EVENT_ID, DECISION_POINT, CUSTOMER_ID, T_EPOCH, POLICY, POLICY_VERSION]
    ].reset_index(drop=True)
    frame = frame.assign(**{REWARD: rewards_out})
    batch = LoggedBatch(
        contexts, action_lists, np.array(chosen), np.array(probs), np.array(rewards_out)
    )
    return TrainingSet(batch, frame, pmfs, report)


def _learnable_decisions(
    decisions: pd.DataFrame,
    report: LogReport,
    decision_point: str | None,
    exclude_holdout: bool,
) -> pd.DataFrame:
    """The decisions a policy may learn from, time-ordered with a ``T_EPOCH`` column: one
    row per event id (the first), of ``decision_point`` if given, holdout rows left out
    (and counted) with ``exclude_holdout``. Sets ``report.decisions``."""
    decisions = decisions.drop_duplicates(EVENT_ID, keep="first")
    if decision_point is not None:
        decisions = decisions[decisions[DECISION_POINT] == decision_point]
    if exclude_holdout and VARIANT in decisions:
        # the experiment's holdout is a deterministic no_contact arm, not the policy's
        # choice: it is measured by `maestro report`, never learned from
        holdout = (decisions[VARIANT] == "holdout").to_numpy()
        if holdout.any():
            report.skipped["holdout"] += int(holdout.sum())
            decisions = decisions[~holdout]
    decisions = decisions.assign(**{T_EPOCH: _ts(decisions[TIMESTAMP])}).sort_values(
        T_EPOCH, kind="stable"
    )
    report.decisions = len(decisions)
    return decisions


def _active_only(
    decisions: pd.DataFrame, catalog: Catalog, activated: Activated, report: LogReport
) -> pd.DataFrame:
    """Drop the never-activated decisions of ``activation: required`` points."""
    required = [n for n, p in catalog.decision_points.items() if p.activation == "required"]
    if not required:
        return decisions
    gated = decisions[DECISION_POINT].isin(required).to_numpy()
    if not gated.any():
        return decisions
    ids = decisions[EVENT_ID].to_numpy()
    shown = activated(ids[gated].tolist())
    inactive = gated & ~np.fromiter((e in shown for e in ids), bool, len(ids))
    report.skipped["inactive"] += int(inactive.sum())
    report.decisions -= int(inactive.sum())
    return decisions[~inactive]


def _reward_index(
    decisions: pd.DataFrame, rewards: pd.DataFrame, report: LogReport, reward_mode: str
) -> dict[str, float]:
    """Event id → the reward learned for it: rewards in time order, within the decision's
    window, once per event id (the first, or summed in ``sum`` mode). Orphan, late,
    non-finite and duplicate rewards are counted in ``report``, never learned from."""
    reward_of: dict[str, float] = {}
    if rewards.empty:
        return reward_of
    known = set(decisions[EVENT_ID])
    uncounted: dict[str, float] = {}
    rewards = rewards.assign(**{T_EPOCH: _ts(rewards[TIMESTAMP])}).sort_values(
        T_EPOCH, kind="stable"
    )
    counted = rewards[COUNTED].astype(bool) if COUNTED in rewards else True
    late = rewards[LATE].astype(bool) if LATE in rewards else False
    report.late_rewards = int(np.sum(late))
    deadline = (
        dict(zip(decisions[EVENT_ID], _ts(decisions[REWARD_DEADLINE]), strict=True))
        if REWARD_DEADLINE in decisions
        else {}
    )
    for event_id, reward, t, ok, is_late in zip(
        rewards[EVENT_ID],
        rewards[REWARD],
        rewards[T_EPOCH],
        np.broadcast_to(counted, len(rewards)),
        np.broadcast_to(late, len(rewards)),
        strict=True,
    ):
        if event_id not in known:
            report.orphan_rewards += 1
            continue
        if is_late or (event_id in deadline and t > deadline[event_id]):
            continue  # kept in the raw log, never learned from
        if not math.isfinite(float(reward)):
            report.skipped["bad_reward"] += 1
            continue
        if not bool(ok):  # the serving layer already saw this reward: a duplicate post
            report.duplicate_rewards += 1
            uncounted.setdefault(event_id, float(reward))
            continue
        if event_id in reward_of:
            report.duplicate_rewards += 1
            if reward_mode == "sum":
                reward_of[event_id] += float(reward)
            continue
        reward_of[event_id] = float(reward)
    # a duplicate with no counted row at all: the process died between the reward
    # index and the log append, and the client's retry is the only row left; it is
    # learned once (an acknowledged reward is never lost)
    for event_id, reward in uncounted.items():
        if event_id not in reward_of:
            reward_of[event_id] = reward
            report.duplicate_rewards -= 1
    return reward_of


def load_training_set(
    logs_dir: str | os.PathLike[str] | LogLocation,
    catalog: Catalog,
    now: float,
    decision_point: str | None = None,
    reward_mode: str = "first",
    activated: Activated | None = None,
) -> TrainingSet:
    """Read the decision and reward datasets of the log at ``logs_dir`` (a path or URI:
    :mod:`training.logs.location`) and join them (``activated``: see :func:`join_logs`)."""
    report = LogReport()
    location = LogLocation.of(logs_dir)
    decisions = read_log(location, "decisions", report, TRAINING_COLUMNS)
    rewards = read_log(location, "rewards", report)
    if decisions.empty:
        raise TrainingDataError(f"no decision logs under {location.uri}/decisions")
    return join_logs(decisions, rewards, catalog, now, report, reward_mode, decision_point,
                     activated=activated)
