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
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from policies.catalog import Catalog
from policies.types import LoggedBatch
from training.errors import TrainingDataError
from training.row_parser import ROW_COLUMNS, JoinCounts, RowParser, join_rows_py

try:
    from training._join import join_rows
except ImportError:  # not built (no compiler): the pure-Python twin
    join_rows = join_rows_py

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class LogReport:
    """What reading and joining the logs kept and skipped, by reason."""

    files_read: int = 0
    files_skipped: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    decisions: int = 0
    rewarded: int = 0
    defaulted: int = 0
    pending: int = 0
    late_rewards: int = 0
    duplicate_rewards: int = 0
    orphan_rewards: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "files_read": self.files_read,
            "files_skipped": len(self.files_skipped),
            "skipped": dict(self.skipped),
            "decisions": self.decisions,
            "rewarded": self.rewarded,
            "defaulted": self.defaulted,
            "pending": self.pending,
            "late_rewards": self.late_rewards,
            "duplicate_rewards": self.duplicate_rewards,
            "orphan_rewards": self.orphan_rewards,
        }


def _cores() -> int:
    """Cores this process may run on (its affinity, e.g. under ``taskset``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


#: the decision log's columns the training join reads (others are never decoded)
TRAINING_COLUMNS = frozenset(
    {*ROW_COLUMNS, "timestamp", "reward_deadline", "variant", "policy", "policy_version"}
)


def read_parquet_dir(
    directory: Path, report: LogReport, columns: Collection[str] | None = None
) -> pd.DataFrame:
    """Every readable ``*.parquet`` under ``directory`` (only those of ``columns`` that a
    file has, when given); unreadable files are skipped."""
    import pandas as pd
    import pyarrow.parquet as pq

    frames = []
    threads = _cores() > 1  # on one core arrow's thread pool only adds hand-offs
    for path in sorted(Path(directory).rglob("*.parquet")):
        try:
            wanted = None
            if columns is not None:
                wanted = [c for c in pq.read_schema(path).names if c in columns]
            table = pq.read_table(path, columns=wanted, use_threads=threads)
            frames.append(table.to_pandas(use_threads=threads))
            report.files_read += 1
        except Exception as exc:  # truncated or corrupt file: counted, never fatal
            report.files_skipped.append(f"{path.name}: {type(exc).__name__}")
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


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
) -> TrainingSet:
    """Join decisions and rewards (see module docstring) into a :class:`TrainingSet`."""
    report = report or LogReport()
    if decisions.empty:
        raise TrainingDataError("no logged decisions to train on")
    decisions = decisions.drop_duplicates("event_id", keep="first")
    if decision_point is not None:
        decisions = decisions[decisions["decision_point"] == decision_point]
    if exclude_holdout and "variant" in decisions:
        # the experiment's holdout is a deterministic no_contact arm, not the policy's
        # choice: it is measured by `maestro report`, never learned from
        holdout = (decisions["variant"] == "holdout").to_numpy()
        if holdout.any():
            report.skipped["holdout"] += int(holdout.sum())
            decisions = decisions[~holdout]
    decisions = decisions.assign(t_epoch=_ts(decisions["timestamp"])).sort_values(
        "t_epoch", kind="stable"
    )
    report.decisions = len(decisions)

    known = set(decisions["event_id"])
    reward_of: dict[str, float] = {}
    uncounted: dict[str, float] = {}
    if not rewards.empty:
        rewards = rewards.assign(t_epoch=_ts(rewards["timestamp"])).sort_values(
            "t_epoch", kind="stable"
        )
        counted = rewards["counted"].astype(bool) if "counted" in rewards else True
        late = rewards["late"].astype(bool) if "late" in rewards else False
        report.late_rewards = int(np.sum(late))
        deadline = (
            dict(zip(decisions["event_id"], _ts(decisions["reward_deadline"]), strict=True))
            if "reward_deadline" in decisions
            else {}
        )
        for event_id, reward, t, ok, is_late in zip(
            rewards["event_id"],
            rewards["reward"],
            rewards["t_epoch"],
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
        # learned once (issue #7: an acknowledged reward is never lost)
        for event_id, reward in uncounted.items():
            if event_id not in reward_of:
                reward_of[event_id] = reward
                report.duplicate_rewards -= 1

    deadlines = _ts(decisions["reward_deadline"]) if "reward_deadline" in decisions else None
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
        ["event_id", "decision_point", "customer_id", "t_epoch", "policy", "policy_version"]
    ].reset_index(drop=True)
    frame = frame.assign(reward=rewards_out)
    batch = LoggedBatch(
        contexts, action_lists, np.array(chosen), np.array(probs), np.array(rewards_out)
    )
    return TrainingSet(batch, frame, pmfs, report)


def load_training_set(
    logs_dir: Path,
    catalog: Catalog,
    now: float,
    decision_point: str | None = None,
    reward_mode: str = "first",
) -> TrainingSet:
    """Read ``logs_dir/decisions`` and ``logs_dir/rewards`` and join them."""
    report = LogReport()
    decisions = read_parquet_dir(Path(logs_dir) / "decisions", report, TRAINING_COLUMNS)
    rewards = read_parquet_dir(Path(logs_dir) / "rewards", report)
    if decisions.empty:
        raise TrainingDataError(f"no decision logs under {Path(logs_dir) / 'decisions'}")
    return join_logs(decisions, rewards, catalog, now, report, reward_mode, decision_point)
