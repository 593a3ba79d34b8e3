"""``maestro segment export NAME``: a segment of ``triggers.yaml`` as an audience.

Reads the customers' features from the offline store (the Feast repo's
``data/customers.parquet``, the latest row of each customer), keeps those the segment's
condition holds for, and writes a Parquet file of ``customer_id`` with the feature values
that qualified them (the features the condition reads). Context keys are absent offline,
so a condition on ``context.*`` holds for nobody here.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from cli.errors import CommandError


def export_segment(settings: Any, name: str, out: Path | None) -> str:
    """Write segment ``name``'s audience to ``out`` (default
    ``$MAESTRO_HOME/segments/<name>.parquet``); returns the line to print."""
    import pandas as pd

    from features.workspace import customers_parquet
    from serving.factory import workspace_catalog

    segments = workspace_catalog(settings)[1]
    if name not in segments:
        known = ", ".join(segments) or "none declared"
        raise CommandError(f"unknown segment {name!r} (triggers.yaml: {known})")
    condition = segments[name]
    source = customers_parquet(settings.feature_repo)
    if not source.exists():
        raise CommandError(f"no offline customers data at {source}: run `maestro init` first")
    frame = pd.read_parquet(source)
    if "event_timestamp" in frame.columns:
        frame = frame.sort_values("event_timestamp")
    frame = frame.drop_duplicates("customer_id", keep="last")
    columns = ["customer_id", *sorted(condition.customer)]
    kept = [row for row in frame[columns].to_dict(orient="records") if _holds(name, segments, row)]
    audience = pd.DataFrame(kept, columns=columns)
    target = out or settings.home / "segments" / f"{name}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    audience.to_parquet(target, index=False)
    return f"segment {name}: {len(audience)} of {len(frame)} customers -> {target}"


def _holds(name: str, segments: Any, row: dict[str, Any]) -> bool:
    values = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
    context = SimpleNamespace(customer=values, request={})
    return name in segments.members(context)
