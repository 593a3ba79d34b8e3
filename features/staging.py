"""``maestro load SOURCE``: read one declared source, check every row, stage the good ones.

Each row is checked against the declaration: a key and a parseable event time, no event
time in the future, each mapped column castable to its feature's type (after the
source's value map), numbers within ``min``/``max``, no second row for the same customer
and event time, and (for a source other than the customer master) a customer the master
knows. A row failing any check is rejected, never dropped silently: the report counts
rows per reason and shows a sample; ``reject_file`` gets every rejected row with its
reasons. Good rows are appended to ``feature_repo/data/staged/<source>.parquet`` (the
Feast batch source of the views the source feeds) with their load time, which
:mod:`features.materialize` uses to move only what changed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.parquet import read_frame
from core.parquet import read_table as read_parquet_table
from features.declared import Declaration
from features.declared_sources import ColumnMap, SourceDecl, file_columns
from features.errors import SourceLoadError
from features.feast.definitions import LOADED_AT, staged_path
from features.sql_source import read_table
from features.staged_files import staged_frame
from features.workspace import customers_parquet, feature_repo_path

if TYPE_CHECKING:
    import pandas as pd

SAMPLE = 5
_WHERE = ("line", "reasons")
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}





@dataclass
class LoadReport:
    """What one ``maestro load`` did: rows read, staged and rejected (per reason), a
    sample of the rejected rows, and where all of them were written."""

    source: str
    rows: int
    staged: int
    rejected: int
    reasons: dict[str, int] = field(default_factory=dict)
    sample: list[dict[str, Any]] = field(default_factory=list)
    reject_file: str | None = None

    def lines(self) -> list[str]:
        """The report as the command prints it."""
        out = [
            f"source {self.source}: {self.rows} rows read, {self.staged} staged, "
            f"{self.rejected} rejected"
        ]
        out += [f"  {reason}: {count}" for reason, count in sorted(self.reasons.items())]
        if self.sample:
            out.append(f"  sample of rejected rows (first {len(self.sample)}):")
            for row in self.sample:
                cells = ", ".join(f"{k}={v}" for k, v in row.items() if k not in _WHERE)
                out.append(f"    line {row['line']}: {row['reasons']} — {cells}")
        if self.reject_file:
            out.append(f"  all rejected rows: {self.reject_file}")
        return out


def read_source(src: SourceDecl) -> pd.DataFrame:
    """The source's rows as read (CSV: every cell a string, nothing guessed)."""
    import pandas as pd

    present = file_columns(src.path, src.kind, src.dsn, src.table)
    if present is None:
        raise SourceLoadError(f"source {src.name}: {src.path} does not exist")
    needed = [src.entity_key, src.event_time] + [m.column for m in src.columns]
    for column in needed:
        if column not in present:
            raise SourceLoadError(f"source {src.name}: column {column!r} is not in {src.path.name}")
    if src.kind == "postgres":
        return read_table(src.dsn, src.table, list(dict.fromkeys(needed)))
    if src.kind == "csv":
        return pd.read_csv(src.path, dtype=str, keep_default_na=False)
    return read_frame(src.path)


def _cast(value: Any, m: ColumnMap) -> tuple[Any, str | None]:
    """One cell as its feature's value, or the reason it is not one."""
    if m.values is not None:
        key = value.strip() if isinstance(value, str) else value
        if key not in m.values:
            return None, f"unmapped_value:{m.feature}"
        value = m.values[key]
    typ = m.type
    try:
        if typ is bool:
            if isinstance(value, bool):
                return value, None
            text = str(value).strip().lower()
            if text in _TRUE or text in _FALSE:
                return text in _TRUE, None
            return None, f"wrong_type:{m.feature}"
        if typ is str:
            return ("" if value is None else str(value)), None
        blank = isinstance(value, str) and not value.strip()
        if value is None or isinstance(value, bool) or blank:
            return None, f"wrong_type:{m.feature}"
        number = float(value)
        if number != number:  # NaN
            return None, f"wrong_type:{m.feature}"
        if typ is int and not number.is_integer():
            return None, f"wrong_type:{m.feature}"
    except (TypeError, ValueError):
        return None, f"wrong_type:{m.feature}"
    if (m.min is not None and number < m.min) or (m.max is not None and number > m.max):
        return None, f"out_of_range:{m.feature}"
    return (int(number) if typ is int else number), None


def _known_customers(home: Path, decl: Declaration, src: SourceDecl) -> set[str] | None:
    """The customer ids ``src`` may mention (None: any, for the customer master)."""
    if src.defines_customers:
        return None
    master = next((s for s in decl.sources if s.defines_customers), None)
    repo = feature_repo_path(home)
    path = repo / staged_path(master.name) if master else customers_parquet(repo)
    if not path.exists():
        return set()
    return set(read_parquet_table(path, ["customer_id"])["customer_id"].to_pylist())


def _check_rows(
    frame: pd.DataFrame, src: SourceDecl, known: set[str] | None, now: float
) -> tuple[list[dict[str, Any]], list[list[str]]]:
    """Each row's values (customer_id, event_timestamp, features) and its reasons."""
    import pandas as pd

    times = pd.to_datetime(
        frame[src.event_time], utc=True, errors="coerce", format="mixed"
    ).dt.floor("us")
    keys = frame[src.entity_key].astype(str).str.strip().tolist()
    stamps = times.tolist()  # Timestamps, NaT for unparseable
    late = (times > pd.Timestamp(now, unit="s", tz="UTC")).tolist()
    cells = [(m, frame[m.column].tolist()) for m in src.columns]
    values: list[dict[str, Any]] = []
    reasons: list[list[str]] = []
    for i, key in enumerate(keys):
        why: list[str] = []
        if not key or key in ("nan", "None"):
            why.append("missing_key")
        elif known is not None and key not in known:
            why.append("unknown_customer")
        ts = stamps[i]
        if ts is pd.NaT:
            why.append("bad_timestamp")
        elif late[i]:
            why.append("future_timestamp")
        row: dict[str, Any] = {"customer_id": key, "event_timestamp": ts}
        for m, column in cells:
            row[m.feature], problem = _cast(column[i], m)
            if problem:
                why.append(problem)
        values.append(row)
        reasons.append(why)
    seen: dict[tuple[str, Any], list[int]] = {}
    for i, row in enumerate(values):
        if not reasons[i]:
            seen.setdefault((row["customer_id"], row["event_timestamp"]), []).append(i)
    for rows in seen.values():
        if len(rows) > 1:
            for i in rows:
                reasons[i].append("duplicate_key")
    return values, reasons


def _stage(
    repo: Path, decl: Declaration, src: SourceDecl, good: list[dict[str, Any]], loaded_at: float
) -> None:
    """Append the good rows to the source's staged Parquet (atomically, by rename), with
    every feature of the views it feeds (a feature it does not map: its default)."""
    import pandas as pd

    path = repo / staged_path(src.name)
    frame = staged_frame(decl, src, good)
    # whole microseconds: Feast's conversion to datetime drops nanoseconds
    frame[LOADED_AT] = pd.Timestamp(int(loaded_at * 1_000_000), unit="us", tz="UTC")
    if path.exists():
        frame = pd.concat([read_frame(path), frame], ignore_index=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def _line(src: SourceDecl, i: int) -> int:
    """Where row ``i`` is in the source: a CSV's file line (the header is line 1), a
    Parquet file's row number from 1."""
    return i + 2 if src.kind == "csv" else i + 1


def _write_rejects(
    path: Path, src: SourceDecl, frame: pd.DataFrame, bad: list[int], reasons: list[list[str]]
) -> None:
    rejects = frame.iloc[bad].copy()
    rejects.insert(0, "line", [_line(src, i) for i in bad])
    rejects.insert(1, "reasons", [";".join(reasons[i]) for i in bad])
    if path.suffix == ".parquet":
        rejects.to_parquet(path, index=False)
    else:
        rejects.to_csv(path, index=False)


def load_source(
    home: Path | str,
    decl: Declaration,
    name: str,
    reject_file: Path | None = None,
    clock: Any = time.time,
) -> LoadReport:
    """Check and stage one batch of the declared source ``name``; see the module docstring."""
    home = Path(home)
    src = decl.source(name)
    frame = read_source(src)
    now = clock()
    values, reasons = _check_rows(frame, src, _known_customers(home, decl, src), now)
    bad = [i for i, why in enumerate(reasons) if why]
    good = [values[i] for i, why in enumerate(reasons) if not why]
    counts: dict[str, int] = {}
    for i in bad:
        for reason in dict.fromkeys(reasons[i]):
            counts[reason] = counts.get(reason, 0) + 1
    if good:
        _stage(feature_repo_path(home), decl, src, good, now)
    sample = [
        {
            "line": _line(src, i),
            "reasons": ";".join(reasons[i]),
            **{k: str(v) for k, v in frame.iloc[i].to_dict().items()},
        }
        for i in bad[:SAMPLE]
    ]
    if reject_file is not None and bad:
        _write_rejects(Path(reject_file), src, frame, bad, reasons)
    return LoadReport(
        name,
        len(frame),
        len(good),
        len(bad),
        counts,
        sample,
        str(reject_file) if reject_file is not None and bad else None,
    )
