"""The decision log's Parquet schema, derived from its records, and its column names.

One place for a column: add, rename or retype a field of
:class:`~training.logs.records.DecisionRecord` or
:class:`~training.logs.records.RewardRecord` and the Arrow schema below, the spool's JSON
schema (:mod:`serving.eventlog.roll`) and the Parquet writers follow. Readers address
columns through the constants here, each checked against the records when this module
is imported, so a column a reader needs cannot silently disappear.

Every column is nullable, as the datasets have always been written. A column added later
(``customer_known``, ``segments``) is absent from older parts: read a directory with
:func:`training.logs.dataset.read_parquet_dir` (file by file; the column is null for the
old rows) or give the reader the schema (``pandas.read_parquet(dir,
schema=DECISION_SCHEMA)``); without it, a reader that takes the schema from the first
part it finds drops the column when that part is an old one.
"""

from __future__ import annotations

import operator
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any

import pyarrow as pa

from training.logs.records import AS_TIMESTAMP, DecisionRecord, RewardRecord

LogRecord = DecisionRecord | RewardRecord

_ARROW_TYPES: dict[type, pa.DataType] = {
    str: pa.string(),
    int: pa.int64(),
    float: pa.float64(),
    bool: pa.bool_(),
}
_TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")


def _arrow_type(hint: Any) -> pa.DataType:
    """The Arrow type of one record field's type hint (``X | None`` is ``X``, nullable)."""
    if typing.get_origin(hint) is typing.Annotated:
        if AS_TIMESTAMP in hint.__metadata__:
            return _TIMESTAMP_TYPE
        hint = typing.get_args(hint)[0]
    if typing.get_origin(hint) is list:
        return pa.list_(_arrow_type(typing.get_args(hint)[0]))
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"a log column holds one type, not {hint!r}")
        return _arrow_type(args[0])
    try:
        return _ARROW_TYPES[hint]
    except KeyError:
        raise TypeError(f"no Parquet column type for a record field of type {hint!r}") from None


def arrow_schema(record_type: type[LogRecord]) -> pa.Schema:
    """The Parquet schema of ``record_type``: one column per field, in field order."""
    hints = typing.get_type_hints(record_type, include_extras=True)
    return pa.schema([(f.name, _arrow_type(hints[f.name])) for f in fields(record_type)])


DECISION_SCHEMA = arrow_schema(DecisionRecord)
REWARD_SCHEMA = arrow_schema(RewardRecord)
SCHEMAS: dict[type[LogRecord], pa.Schema] = {
    DecisionRecord: DECISION_SCHEMA,
    RewardRecord: REWARD_SCHEMA,
}
#: columns of times (epoch seconds in a record and in the spool's JSON)
TIME_COLUMNS = frozenset(
    f.name for s in SCHEMAS.values() for f in s if pa.types.is_timestamp(f.type)
)
#: columns of flags
BOOL_COLUMNS = frozenset(f.name for s in SCHEMAS.values() for f in s if pa.types.is_boolean(f.type))


def _column(name: str, *schemas: pa.Schema) -> str:
    """``name``, after checking that every one of ``schemas`` has that column."""
    for schema in schemas or (DECISION_SCHEMA,):
        if name not in schema.names:
            raise AssertionError(f"the log schema has no column {name!r}")
    return name


EVENT_ID = _column("event_id", DECISION_SCHEMA, REWARD_SCHEMA)
TIMESTAMP = _column("timestamp", DECISION_SCHEMA, REWARD_SCHEMA)
REPLICA = _column("replica", DECISION_SCHEMA, REWARD_SCHEMA)
CUSTOMER_ID = _column("customer_id")
DECISION_POINT = _column("decision_point")
CUSTOMER_FEATURES = _column("customer_features")
CONTEXT = _column("context")
ACTIONS = _column("actions")
PROBABILITIES = _column("probabilities")
ACTION_ID = _column("action_id")
PROBABILITY = _column("probability")
POLICY = _column("policy")
POLICY_VERSION = _column("policy_version")
VARIANT = _column("variant")
SEGMENTS = _column("segments")
REWARD_DEADLINE = _column("reward_deadline")
REWARD = _column("reward", REWARD_SCHEMA)
COUNTED = _column("counted", REWARD_SCHEMA)
LATE = _column("late", REWARD_SCHEMA)


def _values(name: str, values: list[Any]) -> list[Any]:
    if name in TIME_COLUMNS:
        return [None if v is None else int(v * 1_000_000) for v in values]
    if name in BOOL_COLUMNS:  # null stays null (``customer_known`` unknowable or not logged)
        return [None if v is None else bool(v) for v in values]
    return values


def rows_to_table(rows: Sequence[tuple[Any, ...]], schema: pa.Schema) -> pa.Table:
    """Rows in schema column order (times as epoch seconds) → an Arrow table."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema.names]
    arrays = []
    for f, values in zip(schema, columns, strict=True):
        data = _values(f.name, list(values))
        if pa.types.is_timestamp(f.type):
            arrays.append(pa.array(data, type=pa.int64()).cast(f.type))
        else:
            arrays.append(pa.array(data, type=f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _getter(record_type: type[LogRecord]) -> Callable[[LogRecord], tuple[Any, ...]]:
    return operator.attrgetter(*(f.name for f in fields(record_type)))  # type: ignore[return-value]


def records_to_table(records: Sequence[LogRecord], record_type: type[LogRecord]) -> pa.Table:
    """Records of one kind (``record_type``) → an Arrow table in that kind's schema."""
    row_of = _getter(record_type)
    return rows_to_table([row_of(r) for r in records], SCHEMAS[record_type])
