"""The log's Parquet datasets on disk: writing a part atomically, reading a directory.

Both datasets (``logs/decisions/`` and ``logs/rewards/``) are directories of
``part-*.parquet`` files in the schemas of :mod:`training.logs.schema`. The serving log,
erasure and the synthetic generator write parts through :func:`write_atomic`; training
and the experiment report read them through :func:`read_parquet_dir`, which skips (and
counts) a file it cannot read instead of failing.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from training.logs.schema import LogRecord, records_to_table

if TYPE_CHECKING:
    import pandas as pd

    from training.logs.location import LogLocation


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


def write_atomic(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` through a temporary file and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_records(records: Sequence[LogRecord], record_type: type[LogRecord], path: Path) -> None:
    """Write records of one kind as the Parquet part ``path`` (atomically)."""
    write_atomic(records_to_table(records, record_type), path)


def read_parquet_dir(
    directory: str | os.PathLike[str], report: LogReport, columns: Collection[str] | None = None
) -> pd.DataFrame:
    """Every readable ``*.parquet`` under ``directory`` (a path or URI: see
    :mod:`training.logs.location`), only those of ``columns`` that a file has, when given;
    unreadable files are skipped."""
    from training.logs.location import LogLocation

    location = LogLocation.of(directory)
    return read_files(location, location.root, report, columns)


def read_log(
    location: LogLocation, kind: str, report: LogReport, columns: Collection[str] | None = None
) -> pd.DataFrame:
    """Dataset ``kind`` (``decisions`` or ``rewards``) of the log at ``location``."""
    return read_files(location, location.directory(kind), report, columns)


def read_files(
    location: LogLocation, directory: str, report: LogReport,
    columns: Collection[str] | None = None,
) -> pd.DataFrame:
    """The Parquet files under ``directory`` of ``location``'s filesystem as one frame,
    read on the calling thread (:mod:`core.parquet` says why); a truncated or corrupt
    file is counted in ``report``, never fatal."""
    import pandas as pd

    frames = []
    for path in location.files(directory):
        try:
            wanted = None
            if columns is not None:
                wanted = [c for c in location.schema_names(path) if c in columns]
            frames.append(location.read(path, wanted).to_pandas(use_threads=False))
            report.files_read += 1
        except Exception as exc:  # truncated or corrupt file: counted, never fatal
            report.files_skipped.append(f"{path.rsplit('/', 1)[-1]}: {type(exc).__name__}")
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)
