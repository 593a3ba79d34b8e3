"""Rolling spool segments into the log's Parquet datasets, wherever they live (a path or
URI: :mod:`training.logs.location`), each part written atomically.

A part file is named after its spool and segment (``part-<spool>-<segment>.parquet``), so
rolling the same segment twice (a crash between the rename and the segment delete)
rewrites the same file instead of duplicating rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from training.logs.location import LogLocation
from training.logs.schema import (
    CUSTOMER_ID,
    DECISION_SCHEMA,
    REWARD_SCHEMA,
    TIME_COLUMNS,
    rows_to_table,
)


def read_segment(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """The decision and reward records of one spool segment, and how many lines were
    unreadable (a torn last line after a power loss; never the case after kill -9)."""
    decisions: list[dict[str, Any]] = []
    rewards: list[dict[str, Any]] = []
    bad = 0
    with open(path, "rb") as fh:
        for line in fh:
            try:
                record = orjson.loads(line)
                kind = record.pop("_t")
            except (orjson.JSONDecodeError, KeyError, AttributeError, TypeError):
                bad += 1
                continue
            (decisions if kind == "d" else rewards).append(record)
    return decisions, rewards, bad


def _json_schema() -> pa.Schema:
    """The spool lines as JSON carries them: the log schema's columns with times as
    epoch seconds, plus the record type ``_t``."""
    fields: dict[str, pa.DataType] = {"_t": pa.string()}
    for f in (*DECISION_SCHEMA, *REWARD_SCHEMA):
        fields.setdefault(f.name, pa.float64() if f.name in TIME_COLUMNS else f.type)
    return pa.schema(list(fields.items()))


def arrow_tables(path: Path) -> tuple[pa.Table, pa.Table] | None:
    """The segment's decisions and rewards as Arrow tables, parsed by Arrow's C++ JSON
    reader (which releases the GIL: the serving thread keeps running while a segment is
    rolled). ``None`` when a line does not fit (a torn last line): use the line reader."""
    import pyarrow.compute as pc
    import pyarrow.json as pj

    try:
        table = pj.read_json(
            path,
            # on the calling (low-priority roll) thread, not Arrow's CPU pool
            read_options=pj.ReadOptions(use_threads=False),
            parse_options=pj.ParseOptions(
                explicit_schema=_json_schema(), unexpected_field_behavior="ignore"
            ),
        )
    except (pa.ArrowInvalid, OSError):
        return None
    out = []
    for kind, schema in (("d", DECISION_SCHEMA), ("r", REWARD_SCHEMA)):
        part = table.filter(pc.equal(table["_t"], kind))
        arrays = []
        for f in schema:
            col = part[f.name]
            if pa.types.is_timestamp(f.type):  # int(seconds * 1e6), truncated, as rows do
                micros = pc.multiply(col, 1_000_000.0)
                col = pc.cast(pc.trunc(micros), pa.int64()).cast(f.type)
            elif col.type != f.type:
                col = pc.cast(col, f.type)
            arrays.append(col)
        out.append(pa.Table.from_arrays(arrays, schema=schema))
    if table.num_rows != out[0].num_rows + out[1].num_rows:
        return None  # a line without a known record type: the line reader counts it
    return out[0], out[1]


def _erased_in(decisions: pa.Table, erasures: Mapping[str, float]) -> bool:
    from serving.eventlog.tombstones import customer_hash

    ids = decisions[CUSTOMER_ID].unique().to_pylist()
    return any(customer_hash(str(c)) in erasures for c in ids)


@dataclass(frozen=True, slots=True)
class RolledSegment:
    """What one roll wrote: how many records, and the event ids of its counted rewards
    (their claims in the reward index are confirmed: :mod:`serving.eventlog.shared_index`)."""

    records: int
    counted_rewards: list[str]


def roll_segment(
    path: Path,
    location: LogLocation,
    part_name: str,
    erasures: Mapping[str, float] | None = None,
    dropped: dict[str, int] | None = None,
) -> RolledSegment:
    """Write one segment's records as Parquet parts named ``part-<part_name>.parquet`` in
    each dataset of the log at ``location``; return what was written. The segment itself
    is left for the caller to delete, so a crash in between re-rolls it into the same
    file names (no duplicates). Decisions of customers erased since they were logged
    (``erasures``, see :mod:`serving.eventlog.tombstones`) are dropped with their rewards,
    counted in ``dropped``.
    """
    fast = arrow_tables(path)
    if fast is not None and not (erasures and _erased_in(fast[0], erasures)):
        for table, kind in ((fast[0], "decisions"), (fast[1], "rewards")):
            if table.num_rows:
                location.write(table, kind, f"part-{part_name}.parquet")
        rewards = fast[1].filter(fast[1]["counted"])
        return RolledSegment(fast[0].num_rows + fast[1].num_rows, rewards["event_id"].to_pylist())
    decisions, rewards, _bad = read_segment(path)
    counted = [r["event_id"] for r in rewards if r.get("counted")]  # erased ones too
    if erasures:
        from serving.eventlog.tombstones import drop_erased

        decisions, rewards, n_decisions, n_rewards = drop_erased(decisions, rewards, erasures)
        if dropped is not None:
            dropped["decisions"] = dropped.get("decisions", 0) + n_decisions
            dropped["rewards"] = dropped.get("rewards", 0) + n_rewards
    for records, schema, kind in (
        (decisions, DECISION_SCHEMA, "decisions"),
        (rewards, REWARD_SCHEMA, "rewards"),
    ):
        if records:
            rows = [tuple(r.get(name) for name in schema.names) for r in records]
            location.write(rows_to_table(rows, schema), kind, f"part-{part_name}.parquet")
    return RolledSegment(len(decisions) + len(rewards), counted)


def rewrite_without(location: LogLocation, kind: str, column: str, values: Iterable[str]) -> int:
    """Rewrite every Parquet part of dataset ``kind`` at ``location`` dropping rows whose
    ``column`` is in ``values``; return how many rows were dropped (used by erasure)."""
    import pyarrow.compute as pc

    wanted = pa.array(sorted(set(values)), type=pa.string())
    if len(wanted) == 0:
        return 0
    dropped = 0
    for path in location.parts(kind):
        table = location.read(path)
        mask = pc.is_in(table[column], value_set=wanted)
        hits = pc.sum(mask).as_py() or 0
        if not hits:
            continue
        kept = table.filter(pc.invert(mask))
        if kept.num_rows:
            location.replace(kept, path)
        else:
            location.remove(path)
        dropped += hits
    return dropped
