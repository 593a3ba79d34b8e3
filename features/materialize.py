"""``maestro materialize``: move what changed in the staged sources to the online store.

Every staged row carries its load time; a watermark per source
(``data/staged/materialized.json``) records the latest load time already moved. A run
takes the customers with rows loaded since, picks each one's latest row by event time
(a later load wins a tie) over *all* of the source's staged rows — so a batch of old
rows never overwrites a newer value — and writes those rows to every view the source
feeds. Customers with no new rows are not touched. Only the key and time columns of the
staged file are read whole; the rows to write are then read in batches of
:data:`CHUNK_ROWS` and written by the bulk writer of :mod:`features.feast.view_writer`
(Feast's row format, written as Feast's provider writes it) or, for an online store it
does not know, by Feast's ``write_to_online_store``. Training reads the same staged files
through Feast's point-in-time ``get_historical_features`` (:mod:`features.historical`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.parquet import read_frame
from features.declared import Declaration
from features.feast.definitions import LOADED_AT, staged_path
from features.feast.view_writer import ViewChunk, ViewWriter, bulk_view_writer
from features.workspace import feature_repo_path

WATERMARKS = "data/staged/materialized.json"
#: Staged rows read (and written) at a time: bounds a run's memory whatever the file's size.
CHUNK_ROWS = 20_000


@dataclass(frozen=True)
class MaterializeCount:
    """One source's part of a run: staged rows new since the last run, customers written."""

    source: str
    new_rows: int
    customers: int

    def line(self) -> str:
        return (
            f"source {self.source}: {self.new_rows} new staged rows, "
            f"{self.customers} customers written to the online store"
        )


def _read_marks(repo: Path) -> dict[str, str]:
    """Source → the latest load time moved (ISO text: exact to the nanosecond)."""
    try:
        return {k: str(v) for k, v in json.loads((repo / WATERMARKS).read_text()).items()}
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _write_marks(repo: Path, marks: dict[str, str]) -> None:
    path = repo / WATERMARKS
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(marks, indent=2, sort_keys=True))
    os.replace(tmp, path)


def _latest(frame: Any, customers: Any) -> Any:
    """Each of ``customers``' latest staged row (by event time, then load time)."""
    rows = frame[frame["customer_id"].isin(customers)]
    rows = rows.sort_values(["customer_id", "event_timestamp", LOADED_AT])
    return rows.drop_duplicates("customer_id", keep="last")


@dataclass(frozen=True)
class _Plan:
    """What one source's run moves: the staged row numbers to write (each changed
    customer's latest row, ascending, shape (n_customers,)), the new rows' count and
    the latest load time among them."""

    rows: Any
    new_rows: int
    mark: str | None


def _plan(path: Path, mark: Any) -> _Plan:
    """Reads only the key and time columns of the staged file."""
    import numpy as np
    import pandas as pd

    keys = read_frame(path, ["customer_id", "event_timestamp", LOADED_AT])
    keys.index = pd.RangeIndex(len(keys))  # the staged row number
    new = keys[keys[LOADED_AT] > mark]
    if new.empty:
        return _Plan(np.empty(0, dtype=np.int64), 0, None)
    latest = _latest(keys, new["customer_id"].unique())
    rows = np.sort(latest.index.to_numpy(dtype=np.int64))
    return _Plan(rows, len(new), new[LOADED_AT].max().isoformat())


def _chunks(path: Path, rows: Any, columns: list[str]) -> Iterator[Any]:
    """The staged rows numbered ``rows`` (ascending), as Arrow record batches of at most
    :data:`CHUNK_ROWS` rows read in turn, so memory stays bounded by one batch."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    offset = 0
    # on this thread, Arrow's own file (core.parquet: nothing outlives the command)
    with pq.ParquetFile(os.fspath(path), pre_buffer=False) as staged:
        for batch in staged.iter_batches(batch_size=CHUNK_ROWS, columns=columns,
                                         use_threads=False):
            lo, hi = np.searchsorted(rows, [offset, offset + batch.num_rows])
            if hi > lo:
                yield batch.take(pa.array(rows[lo:hi] - offset))
            offset += batch.num_rows


def _chunk_of(batch: Any, names: list[str]) -> ViewChunk:
    import pyarrow as pa
    import pyarrow.compute as pc

    def times(column: str) -> list[Any]:
        us = pc.cast(batch.column(column), pa.timestamp("us", tz="UTC"), safe=False)
        return us.to_pylist()

    return ViewChunk(
        customers=batch.column("customer_id").to_pylist(),
        event_ts=times("event_timestamp"),
        created_ts=times(LOADED_AT),
        columns={n: batch.column(n).to_pylist() for n in names},
    )


def _write_source(
    store: Any, writer: ViewWriter | None, decl: Declaration, src: str, path: Path, rows: Any
) -> None:
    """Every view ``src`` feeds gets the planned rows, chunk by chunk: through the bulk
    ``writer``, or Feast's ``write_to_online_store`` where there is none."""
    views = [(v.name, decl.view_features(v.name)) for v in decl.views if v.source == src]
    needed = list(dict.fromkeys(f.name for _, feats in views for f in feats))
    columns = ["customer_id", "event_timestamp", LOADED_AT, *needed]
    for batch in _chunks(path, rows, columns):
        for view, feats in views:
            names = [f.name for f in feats]
            if writer is None:
                frame = batch.select(["customer_id", "event_timestamp", LOADED_AT, *names])
                store.write_to_online_store(view, frame.to_pandas())
            else:
                writer.write(view, {f.name: f.type for f in feats}, _chunk_of(batch, names))


def materialize_sources(
    home: Path | str, decl: Declaration, store: Any = None, *, bulk: bool = True
) -> list[MaterializeCount]:
    """One incremental run over every declared source; returns what each moved.
    ``bulk=False`` writes through Feast's own ``write_to_online_store`` only."""
    import pandas as pd
    from feast import FeatureStore

    from features.feast.views import silence_feast_warnings

    silence_feast_warnings()
    repo = feature_repo_path(home).resolve()
    store = store or FeatureStore(repo_path=str(repo))
    marks = _read_marks(repo)
    writer = bulk_view_writer(store) if bulk else None
    out = []
    try:
        for src in decl.sources:
            path = repo / staged_path(src.name)
            if not path.exists():
                out.append(MaterializeCount(src.name, 0, 0))
                continue
            plan = _plan(path, pd.Timestamp(marks.get(src.name, "1970-01-01T00:00:00+00:00")))
            if plan.mark is not None:
                _write_source(store, writer, decl, src.name, path, plan.rows)
                marks[src.name] = plan.mark
                _write_marks(repo, marks)
            out.append(MaterializeCount(src.name, plan.new_rows, len(plan.rows)))
    finally:
        if writer is not None:
            writer.close()
    return out
