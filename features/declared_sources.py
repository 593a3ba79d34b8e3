"""The ``sources`` section of ``features.yaml``: one entry per system of record.

A source is a CSV or Parquet file (relative to the workspace) or a PostgreSQL table
(``dsn``, ``table``: :mod:`features.sql_source`) with an entity key
column, an event-time column and a mapping feature → ``{column, values, min, max}``:
``column`` renames (default: the feature's own name), values are cast to the feature's
declared type, ``values`` maps raw values (``"Y"``/``"N"`` → true/false), ``min``/``max``
bound numbers. A source with ``defines_customers: true`` is the customer master: rows
of other sources for customers it does not know are rejected by ``maestro load``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from features.sql_source import table_columns
from features.yaml_lines import DeclarationError, LineDict

if TYPE_CHECKING:
    from features.declared import FeatureDecl, ViewDecl

KINDS = ("csv", "parquet", "postgres")
_SOURCE_KEYS = {
    "kind",
    "path",
    "dsn",
    "table",
    "entity_key",
    "event_time",
    "defines_customers",
    "columns",
}
#: what each kind needs, beside entity_key, event_time and columns
_WHERE = {"csv": ("path",), "parquet": ("path",), "postgres": ("dsn", "table")}
_MAP_KEYS = {"column", "values", "min", "max"}

Fail = Callable[[int, str], DeclarationError]


@dataclass(frozen=True)
class ColumnMap:
    """How one feature is read from a source's column."""

    feature: str
    column: str
    type: type
    values: Mapping[Any, Any] | None = None
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class SourceDecl:
    """One system of record."""

    name: str
    kind: str
    path: Path  # files; for postgres, the table's name (for messages)
    entity_key: str
    event_time: str
    defines_customers: bool
    columns: tuple[ColumnMap, ...]
    dsn: str = ""
    table: str = ""


def file_columns(path: Path, kind: str, dsn: str = "", table: str = "") -> list[str] | None:
    """The column names of a source file or table (None when the file does not exist yet)."""
    if kind == "postgres":
        return table_columns(dsn, table)
    if not path.exists():
        return None
    if kind == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    import csv

    with path.open(newline="") as fh:
        return next(csv.reader(fh), [])


def checked_mapping(fail: Fail, entry: Any, line: int, allowed: set[str], what: str) -> LineDict:
    """``entry`` when it is a mapping whose keys are all ``allowed``; else the error at
    its line (or at the offending key's)."""
    if not isinstance(entry, LineDict):
        raise fail(line, f"{what} must be a mapping")
    for key in entry:
        if key not in allowed:
            raise fail(
                entry.lines[key],
                f"{what}: unknown key {key!r} (allowed: {', '.join(sorted(allowed))})",
            )
    return entry


def _mapping(fail: Fail, name: str, feature: str, entry: Any, line: int, typ: type) -> ColumnMap:
    if entry is None:
        entry = LineDict()
        entry.line, entry.lines = line, {}
    entry = checked_mapping(fail, entry, line, _MAP_KEYS, f"source {name}: {feature}")
    values = entry.get("values")
    if values is not None and not isinstance(values, dict):
        raise fail(entry.lines["values"], f"source {name}: {feature}: values must be a mapping")
    bounds = {}
    for key in ("min", "max"):
        bound = entry.get(key)
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int | float)):
            raise fail(entry.lines[key], f"source {name}: {feature}: {key} must be a number")
        bounds[key] = None if bound is None else float(bound)
    return ColumnMap(
        feature, str(entry.get("column", feature)), typ, values, bounds["min"], bounds["max"]
    )


def _check_columns(
    fail: Fail, name: str, entry: LineDict, maps: list[ColumnMap], present: list[str], where: str
) -> None:
    """Every column the source names (key, event time, mapped) is in its file or table."""
    cols = entry["columns"]
    wanted = [
        (entry["entity_key"], entry.lines["entity_key"]),
        (entry["event_time"], entry.lines["event_time"]),
    ]
    wanted += [(m.column, cols.lines[m.feature]) for m in maps]
    for column, at in wanted:
        if column not in present:
            raise fail(at, f"source {name}: column {column!r} is not in {where}")


def _one_source(
    fail: Fail,
    name: str,
    entry: Any,
    line: int,
    base: Path,
    features: Mapping[str, FeatureDecl],
    views: Mapping[str, ViewDecl],
) -> SourceDecl:
    entry = checked_mapping(fail, entry, line, _SOURCE_KEYS, f"source {name}")
    kind = entry.get("kind")
    if kind not in KINDS:
        raise fail(
            entry.lines.get("kind", line),
            f"source {name}: unknown kind {kind!r} (use {', '.join(KINDS)})",
        )
    for key in (*_WHERE[kind], "entity_key", "event_time"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise fail(entry.lines.get(key, line), f"source {name}: needs {key}")
    cols = entry.get("columns")
    if not isinstance(cols, LineDict) or not cols:
        raise fail(entry.lines.get("columns", line), f"source {name}: needs columns")
    path = Path(entry.get("path") or entry.get("table"))
    path = path if path.is_absolute() or kind == "postgres" else base / path
    dsn, table = str(entry.get("dsn", "")), str(entry.get("table", ""))
    present = file_columns(path, kind, dsn, table)
    maps = []
    for feature, spec in cols.items():
        at = cols.lines[feature]
        decl = features.get(feature)
        if decl is None:
            raise fail(at, f"source {name}: unknown feature {feature!r}")
        if views[decl.view].source != name:
            raise fail(
                at,
                f"source {name}: feature {feature} is in view {decl.view}, fed by "
                f"source {views[decl.view].source}",
            )
        maps.append(_mapping(fail, name, feature, spec, at, decl.type))
    if present is not None:
        _check_columns(fail, name, entry, maps, present, path.name)
    return SourceDecl(
        name,
        kind,
        path,
        entry["entity_key"],
        entry["event_time"],
        bool(entry.get("defines_customers", False)),
        tuple(maps),
        dsn,
        table,
    )


def parse_sources(
    doc: LineDict,
    fail: Fail,
    base: Path,
    features: Mapping[str, FeatureDecl],
    views: Mapping[str, ViewDecl],
) -> list[SourceDecl]:
    """The checked ``sources`` section (empty when absent)."""
    raw = doc.get("sources")
    if raw is None:
        return []
    if not isinstance(raw, LineDict):
        raise fail(doc.lines["sources"], "sources must be a mapping name → source")
    out = [_one_source(fail, n, e, raw.lines[n], base, features, views) for n, e in raw.items()]
    masters = [s.name for s in out if s.defines_customers]
    if len(masters) > 1:
        raise fail(raw.line, f"sources: only one may define customers ({', '.join(masters)})")
    return out
