"""msgspec's fast path for ``/decide`` bodies never accepts what the pydantic schema refuses
and decodes to the same values (``serving/api/fast_decode.py``)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from serving.api.fast_decode import _DECODER, DecideBody, decode_decide
from serving.api.schemas import DecideRequest

CHANNELS = ["email", "push", "sms", "in_app", "whatsapp", "call_center", "agent", "none"]
# names and values near every limit: empty, 64/65/128/129/512/513 characters, control
# characters (escaped by json.dumps), DEL (left raw), non-ASCII, lone surrogates
text = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["", "a", "x" * 64, "x" * 65, "y" * 128, "y" * 129, "z" * 512, "z" * 513]),
    st.sampled_from(["a\x00b", "tab\there", "del\x7f", "é" * 64, "é" * 65, "\ud800", "ß"]),
)
scalar = st.one_of(
    text,
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
values = st.dictionaries(text, scalar, max_size=5) | st.sampled_from(
    [{f"k{i}": i for i in range(64)}, {f"k{i}": i for i in range(65)}, [], "x", None]
)
action = st.fixed_dictionaries(
    {"id": text | st.integers(), "channel": st.sampled_from([*CHANNELS, "fax", 3])},
    optional={"features": values, "extra": st.integers()},
)
# mostly valid bodies, so the fast path accepts many and is compared value by value
name = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=10)
plain = st.one_of(name, st.booleans(), st.integers(), st.floats(allow_nan=False), text)
plain_values = st.dictionaries(name | text, plain, max_size=6)
near_valid = st.fixed_dictionaries(
    {"customer_id": name},
    optional={
        "decision_point": name,
        "request_id": name | st.none(),
        "context": plain_values,
        "actions": st.lists(
            st.fixed_dictionaries(
                {"id": name, "channel": st.sampled_from(CHANNELS)},
                optional={"features": plain_values},
            ),
            min_size=1,
            max_size=4,
        ),
    },
)
anything = st.fixed_dictionaries(
    {},
    optional={
        "customer_id": text | st.integers() | st.none(),
        "decision_point": text | st.none(),
        "request_id": text | st.none() | st.integers(),
        "context": values,
        "actions": st.none()
        | st.lists(action, max_size=4)
        | st.sampled_from([[{"id": "a", "channel": "agent"}] * 101, "agents", {}]),
        "surprise": st.integers(),
    },
)
body = near_valid | anything


def _value(v: Any) -> tuple[str, str]:
    return type(v).__name__, repr(v)  # 1 and True and 1.0 differ; -0.0 and 0.0 too


def _values(m: Any) -> list[tuple[str, tuple[str, str]]]:
    return [(k, _value(v)) for k, v in m.items()]


def normalise(req: Any) -> tuple:
    actions = (
        None
        if req.actions is None
        else [(a.id, a.channel, _values(a.features)) for a in req.actions]
    )
    return req.customer_id, req.decision_point, req.request_id, _values(req.context), actions


def schema(raw: bytes) -> tuple | None:
    try:
        return normalise(DecideRequest.model_validate_json(raw))
    except ValidationError:
        return None


@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(body, st.booleans())
def test_fast_path_accepts_only_what_the_schema_accepts_with_the_same_values(
    doc: dict[str, Any], ascii_only: bool
) -> None:
    raw = json.dumps(doc, ensure_ascii=ascii_only, allow_nan=True).encode("utf-8", "surrogatepass")
    expected = schema(raw)
    try:
        fast = normalise(_DECODER.decode(raw))
    except Exception:
        fast = None
    if fast is not None and b"\\" not in raw and b"\x7f" not in raw:
        assert expected == fast  # the fast path took it: the schema takes it, same values
    decoded: tuple | None
    try:
        decoded = normalise(decode_decide(raw))
    except ValidationError:
        decoded = None
    assert decoded == expected


def test_a_plain_body_takes_the_fast_path_and_matches_the_schema() -> None:
    raw = json.dumps(
        {
            "customer_id": "c-1",
            "decision_point": "agent_routing",
            "context": {"required_skill": "billing", "required_level": 1, "vip": True},
            "actions": [
                {"id": "agent-1", "channel": "agent", "features": {"load": 2, "score": 0.5}}
            ],
        },
        ensure_ascii=False,
    ).encode()
    req = decode_decide(raw)
    assert isinstance(req, DecideBody)
    assert normalise(req) == schema(raw)
    assert req.actions is not None and req.actions[0].features == {"load": 2, "score": 0.5}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"customer_id":"c","context":{"bad\x7fname":1}}', "context.bad\x7fname.[key]"),
        (b'{"customer_id":"c\\u0001"}', "customer_id"),
        (b'{"customer_id":"c","context":{"x":1e999}}', "context.x"),
        (b'{"customer_id":"c","context":{"x":"' + b"z" * 513 + b'"}}', "context.x"),
        (b'{"customer_id":"c","actions":[{"id":"a","channel":"fax"}]}', "actions.0.channel"),
        (b'{"customer_id":"c","actions":[]}', "actions"),
        (b'{"customer_id":"c","surprise":1}', "surprise"),
        (b'{"customer_id":"c\xff"}', ""),
    ],
)
def test_refused_bodies_raise_the_schema_errors(raw: bytes, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        decode_decide(raw)
    locs = [".".join(str(p) for p in e["loc"]) for e in caught.value.errors()]
    assert field in locs


def test_finite_floats_and_big_integers_are_kept_exactly() -> None:
    raw = (
        b'{"customer_id":"c","context":'
        b'{"f":-0.0,"g":1.7976931348623157e308,"n":123456789012345678901234567890}}'
    )
    req = decode_decide(raw)
    assert isinstance(req, DecideBody)
    assert math.copysign(1.0, req.context["f"]) == -1.0
    assert req.context["n"] == 123456789012345678901234567890
    assert normalise(req) == schema(raw)
