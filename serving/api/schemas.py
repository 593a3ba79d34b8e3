"""Pydantic models of the HTTP API (the contract's shapes).

Every request model forbids unknown fields and NaN/infinite numbers; lists, mappings and
strings are bounded so one request cannot make the service do unbounded work.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictStr,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

MAX_ACTIONS = 100
MAX_KEYS = 64
MAX_STRING = 512

#: names and ids carry no control characters (NUL bytes included): hostile input is refused
#: with a 422 at the edge (RELIABILITY.md, item 9)
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Key = Annotated[StrictStr, StringConstraints(min_length=1, max_length=64, pattern=PRINTABLE)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
#: a reward is a JSON number, not a numeric string: the schema says number, and
#: schemathesis' negative cases hold the API to refusing anything else
StrictFiniteFloat = Annotated[float, Field(allow_inf_nan=False, strict=True)]


def _iso_only(value: Any) -> Any:
    """A timestamp is an ISO 8601 string (as documented), not an epoch number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError("must be an ISO 8601 date-time string")
    return value


Timestamp = Annotated[datetime, BeforeValidator(_iso_only)]


def _scalar(value: Any) -> str | bool | int | float:
    """A context/feature value: a string (≤ 512 chars), a finite number or a boolean."""
    if isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number (NaN and infinity are not allowed)")
        return value
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise ValueError(f"strings are limited to {MAX_STRING} characters")
        return value
    raise ValueError(f"must be a string, number or boolean, not {type(value).__name__}")


Scalar = Annotated[
    Any,
    PlainValidator(_scalar),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "maxLength": MAX_STRING},
                {"type": "number"},
                {"type": "boolean"},
            ]
        }
    ),
]
Id = Annotated[StrictStr, StringConstraints(min_length=1, max_length=128, pattern=PRINTABLE)]

#: an anonymous id: its profile id, ``anon:<id>``, stays within an id's 128 characters
AnonymousId = Annotated[
    StrictStr, StringConstraints(min_length=1, max_length=123, pattern=PRINTABLE)
]

Channel = Literal["email", "push", "sms", "in_app", "whatsapp", "call_center", "agent", "none"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class ActionIn(_Strict):
    id: Id
    channel: Channel
    features: dict[Key, Scalar] = Field(default_factory=dict, max_length=MAX_KEYS)


def _NAMED(field: str) -> dict[str, object]:  # noqa: N802
    """JSON Schema: ``field`` is present and a string (not null)."""
    return {"required": [field], "properties": {field: {"type": "string"}}}


def _one_identity(customer_id: str | None, info: ValidationInfo) -> str | None:
    """A request names a customer, an anonymous visitor, or both (a decide): checked on
    ``customer_id`` (declared after ``anonymous_id``) so that the 422 names that field."""
    if customer_id is None and info.data.get("anonymous_id") is None:
        raise ValueError("customer_id or anonymous_id is required")
    return customer_id


class DecideRequest(_Strict):
    """``customer_id``, ``anonymous_id`` (a device or cookie id, linked to a customer by an
    ``identify`` event), or both: the decision is for the customer the anonymous id is
    linked to, else for the anonymous visitor's own profile; both ids are logged."""

    # the schema says what the validator checks: at least one of the two ids
    model_config = ConfigDict(
        json_schema_extra={"anyOf": [_NAMED("customer_id"), _NAMED("anonymous_id")]}
    )

    anonymous_id: AnonymousId | None = None
    customer_id: Id | None = Field(default=None, validate_default=True)
    decision_point: Annotated[StrictStr, StringConstraints(min_length=1, max_length=64)] = "default"
    request_id: Id | None = None
    context: dict[Key, Scalar] = Field(default_factory=dict, max_length=MAX_KEYS)
    actions: list[ActionIn] | None = Field(default=None, min_length=1, max_length=MAX_ACTIONS)

    @field_validator("customer_id", mode="after")
    @classmethod
    def _identified(cls, customer_id: str | None, info: ValidationInfo) -> str | None:
        return _one_identity(customer_id, info)


class RankedOut(BaseModel):
    action_id: str
    probability: float


class ExcludedOut(BaseModel):
    action_id: str
    reason: str


class DecideResponse(BaseModel):
    event_id: str
    action_id: str | None
    channel: str | None
    probability: float
    ranking: list[RankedOut]
    excluded: list[ExcludedOut]
    policy: str
    policy_version: str
    degraded: bool
    customer_known: bool | None = Field(
        description="the feature store holds features for this customer (loaded, or written "
        "by /events); false: decided from the defaults; null: the store could not be read "
        "(a degraded answer)"
    )


class RewardRequest(_Strict):
    event_id: Annotated[StrictStr, StringConstraints(min_length=1, max_length=128)]
    reward: StrictFiniteFloat


class RewardResponse(BaseModel):
    event_id: str
    accepted: bool
    duplicate: bool


class ActivationResponse(BaseModel):
    event_id: str
    activated: bool = True
    duplicate: bool


class BudgetUse(BaseModel):
    decision_point: str
    action_id: str
    max: int
    per: str
    period: str
    used: int
    remaining: int


class BudgetsResponse(BaseModel):
    budgets: list[BudgetUse]


class EventRequest(_Strict):
    """An event of a customer (``customer_id``) or of an anonymous visitor
    (``anonymous_id``), not both; ``identify`` links ``properties.anonymous_id`` to
    ``customer_id``."""

    # the schema says what the validator checks: exactly one of the two ids, and identify
    # with the customer's
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [_NAMED("customer_id"), _NAMED("anonymous_id")],
            "if": {"properties": {"type": {"const": "identify"}}, "required": ["type"]},
            "then": _NAMED("customer_id"),
        }
    )

    anonymous_id: AnonymousId | None = None
    type: Annotated[StrictStr, StringConstraints(min_length=1, max_length=64)]
    properties: dict[Key, Scalar | None] = Field(default_factory=dict, max_length=MAX_KEYS)
    timestamp: Timestamp | None = None
    customer_id: Id | None = Field(default=None, validate_default=True)

    @field_validator("customer_id", mode="after")
    @classmethod
    def _identified(cls, customer_id: str | None, info: ValidationInfo) -> str | None:
        _one_identity(customer_id, info)
        if customer_id is not None and info.data.get("anonymous_id") is not None:
            raise ValueError("give customer_id or anonymous_id, not both")
        if customer_id is None and info.data.get("type") == "identify":
            raise ValueError("identify needs customer_id")
        return customer_id


class OutcomeReward(BaseModel):
    """One reward an outcome event was turned into: the decision, its share, whether it
    counted (``false``: that decision's reward was already claimed, or its window is over)
    and the attribution rule (``event_id`` when the event named the decision)."""

    event_id: str
    reward: float
    counted: bool
    attribution: str


class EventAccepted(BaseModel):
    accepted: bool = True
    customer_id: str | None
    anonymous_id: str | None = None
    type: str
    #: an outcome event with a reward defined: the rewards it became (empty: none joined)
    rewards: list[OutcomeReward] | None = None


class ErasureResponse(BaseModel):
    customer_id: str
    erased: dict[str, int]


class ErrorItem(BaseModel):
    field: str | None
    problem: str
    type: str


class ErrorResponse(BaseModel):
    detail: list[ErrorItem]
