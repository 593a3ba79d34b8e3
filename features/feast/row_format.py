"""Feast's online row format as the readers decode it: entity keys, values, timestamps.

Feast serialises an entity key (version 3) into the SQLite ``entity_key`` column and
the Redis hash key; a value is a ``ValueProto`` (and, in SQLite, also ``str()`` of it in
``value_text``); SQLite's ``event_ts`` is a naive-UTC datetime. A backend returns its
rows as :data:`Rows`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from features.source import FeatureValue

_ONEOF = {str: "string_val", int: "int64_val", float: "double_val", bool: "bool_val"}

_JOIN_KEY = b"customer_id"
#: Feast's entity key serialisation v3 for one string join key: number of keys, then
#: (STRING=2, length, name) per key, then (STRING=2, length, utf-8 value) per value.
_KEY_PREFIX = struct.pack("<III", 1, 2, len(_JOIN_KEY)) + _JOIN_KEY


def entity_key_bytes(customer_id: str) -> bytes:
    """Feast's serialised entity key (version 3) of one customer (equal to
    ``feast.infra.key_encoding_utils.serialize_entity_key``; a test checks it)."""
    value = customer_id.encode()
    return _KEY_PREFIX + struct.pack("<II", 2, len(value)) + value


# A backend returns {view: (event time in epoch seconds, {feature: value})}.
Rows = dict[str, tuple[float, dict[str, FeatureValue]]]
FROM_TEXT: dict[type, Callable[[str], FeatureValue]] = {
    str: str,
    int: int,
    float: float,
    bool: lambda s: s == "True",
}


def proto_decoder(types: dict[str, type]) -> Callable[[str, bytes], FeatureValue]:
    """Decode Feast's ``ValueProto`` bytes of a named feature of ``types`` (None if null or
    mistyped)."""
    from feast.protos.feast.types.Value_pb2 import Value

    def decode(name: str, blob: bytes) -> FeatureValue:
        proto = Value()
        proto.ParseFromString(blob)
        oneof = _ONEOF[types[name]]
        return getattr(proto, oneof) if proto.WhichOneof("val") == oneof else None

    return decode


def sqlite_ts(value: Any) -> float:
    """Feast stores a naive-UTC datetime through ``datetime.timestamp()`` (local time)."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value).replace(tzinfo=UTC).timestamp()
    if isinstance(value, bytes):
        value = value.decode()
    parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
