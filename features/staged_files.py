"""The workspace's declaration file and staged Parquet files, made present before Feast
reads them: ``maestro init`` writes ``features.yaml`` from the packaged default when the
workspace has none, and every declared source gets an (empty) staged Parquet with its
columns, so ``feast apply``, materialisation and historical reads find their batch data.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from features.declared import DEFAULT_FILE, SYNTHETIC, Declaration, workspace_declaration_path
from features.declared_sources import SourceDecl
from features.feast.definitions import LOADED_AT, staged_path

if TYPE_CHECKING:
    import pandas as pd


def ensure_declaration(home: Path | str) -> Path:
    """``$MAESTRO_HOME/features.yaml``, copied from the packaged default when missing."""
    path = workspace_declaration_path(home)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DEFAULT_FILE, path)
    return path


def staged_frame(decl: Declaration, src: SourceDecl, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows in the staged layout: customer_id, event_timestamp, then each feature of the
    views ``src`` feeds, typed as declared (an empty frame keeps the columns and types)."""
    import pandas as pd

    dtypes = {str: "object", int: "int64", float: "float64", bool: "bool"}
    feeds = {v.name for v in decl.views if v.source == src.name and src.name != SYNTHETIC}
    columns: dict[str, Any] = {
        "customer_id": pd.Series([r["customer_id"] for r in rows], dtype="object"),
        "event_timestamp": pd.to_datetime(
            pd.Series([r["event_timestamp"] for r in rows], dtype="object"), utc=True
        ),
    }
    for f in decl.features:
        if f.view in feeds:
            data = [r.get(f.name, f.default) for r in rows]
            columns[f.name] = pd.Series(data, dtype=dtypes[f.type])
    return pd.DataFrame(columns)


def ensure_staged(repo: Path, decl: Declaration) -> None:
    """An empty staged Parquet (with its columns) for each source that has none yet."""
    import pandas as pd

    for src in decl.sources:
        path = repo / staged_path(src.name)
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        frame = staged_frame(decl, src, [])
        frame[LOADED_AT] = pd.Series([], dtype="datetime64[ns, UTC]")
        tmp = path.with_suffix(".parquet.tmp")
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
