"""``POST /decide`` bodies decoded by msgspec on the hot path, by the pydantic schema otherwise.

:class:`serving.api.schemas.DecideRequest` is *the* schema: ``/openapi.json`` documents it and
its errors are the 422s callers see. Validating a 12-agent ``agent_routing`` body (~2 KB)
spends most of its time in per-value Python validators and per-name regexes. msgspec
(Jim Crist-Harif, https://jcristharif.com/msgspec/) decodes and validates the same JSON
straight into frozen ``Struct`` s, all in C, in about a quarter of the time
(BENCHMARKS.md, "Agent routing" and "Serving: notes").

The structs below mirror the schema's constraints one for one (lengths, counts, the
channel literal, string/boolean/integer/float values, no unknown fields, finite numbers:
JSON has no NaN and msgspec refuses numbers out of range) except one: the printable-name
pattern of ids and feature names, which msgspec would check with Python's ``re`` per
string (slower than pydantic). A body is decoded here only when its bytes hold no
backslash and no DEL (``0x7f``): JSON forbids raw control characters inside strings, so
such a body cannot carry a control character in any string and the pattern cannot fail.
Every other body (escapes, DEL), and every body msgspec refuses, is validated by pydantic,
which accepts it or raises the ``ValidationError`` the 422 is built from. So the fast path
never accepts what the schema refuses and decodes to the same values (checked on
generated bodies in ``tests/serving/test_fast_decode.py``); errors are always the
schema's.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

from serving.api.schemas import MAX_ACTIONS, MAX_KEYS, MAX_STRING, DecideRequest

Key = Annotated[str, Meta(min_length=1, max_length=64)]
Id = Annotated[str, Meta(min_length=1, max_length=128)]
Scalar = Annotated[str, Meta(max_length=MAX_STRING)] | bool | int | float
Channel = Literal["email", "push", "sms", "in_app", "whatsapp", "call_center", "agent", "none"]
Values = Annotated[dict[Key, Scalar], Meta(max_length=MAX_KEYS)]


class ActionBody(Struct, forbid_unknown_fields=True, frozen=True):
    """:class:`serving.api.schemas.ActionIn`, decoded by msgspec."""

    id: Id
    channel: Channel
    features: Values = {}


class DecideBody(Struct, forbid_unknown_fields=True, frozen=True):
    """:class:`serving.api.schemas.DecideRequest`, decoded by msgspec."""

    customer_id: Id
    anonymous_id: Annotated[str, Meta(min_length=1, max_length=123)] | None = None
    decision_point: Annotated[str, Meta(min_length=1, max_length=64)] = "default"
    request_id: Id | None = None
    context: Values = {}
    actions: Annotated[list[ActionBody], Meta(min_length=1, max_length=MAX_ACTIONS)] | None = None


_DECODER = msgspec.json.Decoder(DecideBody)


def decode_decide(body: bytes) -> DecideBody | DecideRequest:
    """``body`` as a decide request: msgspec's when it may and can, else the schema's
    (raising pydantic's ``ValidationError`` for a body the schema refuses)."""
    if b"\\" not in body and b"\x7f" not in body:
        try:
            return _DECODER.decode(body)
        except (msgspec.MsgspecError, ValueError):  # invalid UTF-8 is a ValueError
            pass
    return DecideRequest.model_validate_json(body)
