"""``maestro materialize``: move what changed in the staged sources to the online store.

Every staged row carries its load time; a watermark per source
(``data/staged/materialized.json``) records the latest load time already moved. A run
takes the customers with rows loaded since, picks each one's latest row by event time
(a later load wins a tie) over *all* of the source's staged rows — so a batch of old
rows never overwrites a newer value — and writes those rows to every view the source
feeds through Feast's ``write_to_online_store``. Customers with no new rows are not
touched. Training reads the same staged files through Feast's point-in-time
``get_historical_features`` (:mod:`features.historical`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from features.declared import Declaration
from features.feast.definitions import LOADED_AT, staged_path
from features.workspace import feature_repo_path

WATERMARKS = "data/staged/materialized.json"


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


def materialize_sources(
    home: Path | str, decl: Declaration, store: Any = None
) -> list[MaterializeCount]:
    """One incremental run over every declared source; returns what each moved."""
    import pandas as pd
    from feast import FeatureStore

    from features.feast.views import silence_feast_warnings

    silence_feast_warnings()
    repo = feature_repo_path(home).resolve()
    store = store or FeatureStore(repo_path=str(repo))
    marks = _read_marks(repo)
    out = []
    for src in decl.sources:
        path = repo / staged_path(src.name)
        if not path.exists():
            out.append(MaterializeCount(src.name, 0, 0))
            continue
        frame = pd.read_parquet(path)
        mark = pd.Timestamp(marks.get(src.name, "1970-01-01T00:00:00+00:00"))
        new = frame[frame[LOADED_AT] > mark]
        customers = new["customer_id"].unique()
        if len(customers):
            latest = _latest(frame, customers)
            for view in decl.views:
                if view.source != src.name:
                    continue
                names = [f.name for f in decl.view_features(view.name)]
                cols = ["customer_id", "event_timestamp", LOADED_AT, *names]
                store.write_to_online_store(view.name, latest[cols].reset_index(drop=True))
            marks[src.name] = new[LOADED_AT].max().isoformat()
            _write_marks(repo, marks)
        out.append(MaterializeCount(src.name, len(new), len(customers)))
    return out
