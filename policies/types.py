"""Typed records that flow between the layers of Maestro.

Shapes follow Open Bandit Pipeline's conventions: ``n_rounds`` logged decisions,
``n_actions`` candidate actions in a round.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType, MemberDescriptorType
from typing import TypeVar

import numpy as np

from policies.errors import (
    DuplicateActionError,
    EmptyActionsError,
    InvalidFeatureError,
    InvalidInputError,
    UnknownChannelError,
)

#: A feature value: what Feast serves and what callers send in ``context``.
FeatureValue = str | int | float | bool | None

#: Every channel an action can use. ``none`` is the channel of ``no_contact``.
CHANNELS: frozenset[str] = frozenset(
    {"email", "push", "sms", "in_app", "whatsapp", "call_center", "agent", "none"}
)
#: Channels on which Maestro contacts a customer (those consent applies to).
CONTACT_CHANNELS: tuple[str, ...] = ("email", "push", "sms", "in_app", "whatsapp", "call_center")
NO_CONTACT_ID = "no_contact"

_EMPTY: Mapping[str, FeatureValue] = MappingProxyType({})
_R = TypeVar("_R")


def trusted(cls: type[_R], names: tuple[str, ...], values: tuple[object, ...]) -> _R:
    """An instance of the frozen, slotted record ``cls`` with every field ``names[i]`` set
    to ``values[i]``, without ``__init__`` (so without ``__post_init__`` checks): for hot
    loops building records from values already valid. Each ``(cls, names)`` gets its own
    builder once (:func:`_builder`), so a call is one look-up and one unrolled call."""
    build = _BUILDERS.get((cls, names))
    if build is None:
        build = _BUILDERS[(cls, names)] = _builder(cls, names)
    if len(names) != len(values):
        raise ValueError(f"{cls.__name__}: {len(names)} field names, {len(values)} values")
    return build(*values)  # type: ignore[no-any-return]


_BUILDERS: dict[tuple[type, tuple[str, ...]], Callable[..., object]] = {}


def _builder(cls: type, names: tuple[str, ...]) -> Callable[..., object]:
    """A function of ``len(names)`` values that makes a ``cls`` without ``__init__``: the
    slots' own setters (which a frozen dataclass's ``__setattr__`` does not guard) called
    in a row, generated once as :mod:`dataclasses` generates ``__init__``; a class without
    such slots gets the generic loop."""
    slots = [cls.__dict__.get(name) for name in names]
    if names and all(isinstance(s, MemberDescriptorType) for s in slots):
        scope: dict[str, object] = {"_new": object.__new__, "_cls": cls}
        scope.update({f"_set{i}": s.__set__ for i, s in enumerate(slots)})  # type: ignore[union-attr]
        args = ", ".join(f"v{i}" for i in range(len(names)))
        body = "".join(f"    _set{i}(obj, v{i})\n" for i in range(len(names)))
        exec(f"def build({args}):\n    obj = _new(_cls)\n{body}    return obj\n", scope)
        return scope["build"]  # type: ignore[return-value]

    def build(*values: object) -> object:
        obj = object.__new__(cls)
        for name, value in zip(names, values, strict=True):
            object.__setattr__(obj, name, value)
        return obj

    return build


_CONTEXT_FIELDS = ("customer_id", "customer", "request", "decision_point", "timestamp")


_SCALARS = frozenset({str, int, bool, float, type(None)})


def _plainly_valid(features: Mapping[str, FeatureValue]) -> bool:
    """True when every name is a non-empty ``str`` and every value a plain scalar with
    finite floats: set operations over ``map(type, …)`` run in C, so the common case
    costs a few microseconds for a hundred features (the per-feature loop below finds
    the culprit, or accepts subclasses such as ``numpy.float64``, when this says no)."""
    if "" in features or not set(map(type, features)) <= {str}:
        return False
    types = set(map(type, features.values()))
    if not types <= _SCALARS:
        return False
    return float not in types or math.isfinite(
        sum(v for v in features.values() if type(v) is float)
    )


def check_features(features: Mapping[str, FeatureValue], where: str) -> None:
    """Raise :class:`InvalidFeatureError` for NaN/infinite numbers or unsupported types."""
    if not features or _plainly_valid(features):
        return
    for name, value in features.items():
        if not isinstance(name, str) or not name:
            raise InvalidFeatureError(
                f"{where}: feature names must be non-empty strings", field=where
            )
        if value is None or isinstance(value, (str, bool, int)):
            continue
        if isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidFeatureError(
                    f"{where}.{name}: must be a finite number, got {value!r}",
                    field=f"{where}.{name}",
                )
            continue
        raise InvalidFeatureError(
            f"{where}.{name}: must be a string, number or boolean, got {type(value).__name__}",
            field=f"{where}.{name}",
        )


@dataclass(frozen=True, slots=True, eq=True)
class Action:
    """One thing Maestro can do: an offer or message on a channel, or ``no_contact``."""

    id: str
    channel: str
    features: Mapping[str, FeatureValue] = field(default_factory=lambda: _EMPTY)

    def __post_init__(self) -> None:
        if not self.id or not isinstance(self.id, str):
            raise InvalidInputError("action id must be a non-empty string", field="actions.id")
        if self.channel not in CHANNELS:
            raise UnknownChannelError(
                f"action {self.id!r}: unknown channel {self.channel!r}; "
                f"expected one of {sorted(CHANNELS)}",
                field="actions.channel",
            )
        check_features(self.features, f"actions[{self.id}].features")


@dataclass(frozen=True, slots=True)
class Context:
    """What the policy sees about one moment: the customer's features and the request's context.

    ``timestamp`` is seconds since the epoch (UTC) of the decision, used by time rules.
    """

    customer_id: str
    customer: Mapping[str, FeatureValue] = field(default_factory=lambda: _EMPTY)
    request: Mapping[str, FeatureValue] = field(default_factory=lambda: _EMPTY)
    decision_point: str = "default"
    timestamp: float = 0.0

    def __post_init__(self) -> None:
        check_features(self.customer, "customer")
        check_features(self.request, "context")

    @classmethod
    def trusted(
        cls,
        customer_id: str,
        customer: Mapping[str, FeatureValue],
        request: Mapping[str, FeatureValue],
        decision_point: str,
        timestamp: float,
    ) -> Context:
        """Build without re-validating: for features checked already (for example decoded
        from a log written by Maestro and screened by the caller). Saves the per-feature
        check on hot loops over millions of logged rows."""
        # :func:`trusted` for this one record, unrolled over its slots' setters (bound once
        # below): ~1 µs less on every served decision than the generic loop
        obj = _new(cls)
        _set_id(obj, customer_id)
        _set_customer(obj, customer)
        _set_request(obj, request)
        _set_point(obj, decision_point)
        _set_timestamp(obj, timestamp)
        return obj


_new = object.__new__
#: the slot setters of Context's fields, in _CONTEXT_FIELDS order (frozen: set once here)
_set_id, _set_customer, _set_request, _set_point, _set_timestamp = (
    getattr(Context, name).__set__ for name in _CONTEXT_FIELDS
)


@dataclass(frozen=True, slots=True)
class Exclusion:
    """An action the rules forbade, with a machine-readable reason (``no_consent:sms``)."""

    action_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class RankedAction:
    action_id: str
    probability: float


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one decision.

    ``probability`` is the probability with which ``action`` was drawn over the
    eligible actions; ``ranking`` holds every eligible action's probability, in
    decreasing order, summing to 1. ``action`` is ``None`` when nothing was eligible.
    """

    event_id: str
    action: Action | None
    probability: float
    ranking: tuple[RankedAction, ...]
    excluded: tuple[Exclusion, ...] = ()
    policy: str = ""
    policy_version: str = ""
    explored: bool = False


def validate_actions(actions: Sequence[Action]) -> None:
    """Raise for an empty list or duplicate ids."""
    if not actions:
        raise EmptyActionsError("at least one candidate action is required", field="actions")
    seen: set[str] = set()
    for action in actions:
        if action.id in seen:
            raise DuplicateActionError(f"duplicate action id {action.id!r}", field="actions")
        seen.add(action.id)


@dataclass(frozen=True)
class LoggedBatch:
    """Logged bandit feedback, one row per decision (``n_rounds`` rows).

    - ``contexts``: length ``n_rounds``.
    - ``actions``: the eligible actions of each round (ragged, ``n_actions`` may differ).
    - ``chosen``: index into that round's ``actions``, shape ``(n_rounds,)``.
    - ``probabilities``: logging policy's probability of the chosen action, shape ``(n_rounds,)``.
    - ``rewards``: observed rewards, shape ``(n_rounds,)``.
    """

    contexts: Sequence[Context]
    actions: Sequence[Sequence[Action]]
    chosen: np.ndarray
    probabilities: np.ndarray
    rewards: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.contexts)
        if len(self.actions) != n:
            raise InvalidInputError("LoggedBatch: actions must have one list per context")
        for name in ("chosen", "probabilities", "rewards"):
            arr = getattr(self, name)
            if np.shape(arr) != (n,):
                raise InvalidInputError(f"LoggedBatch.{name}: expected shape ({n},)")
        chosen = np.asarray(self.chosen)
        for i, (idx, acts) in enumerate(zip(chosen, self.actions, strict=True)):
            if not 0 <= int(idx) < len(acts):
                raise InvalidInputError(f"LoggedBatch.chosen[{i}] out of range")
        probs = np.asarray(self.probabilities, dtype=float)
        if n and (not np.all(np.isfinite(probs)) or np.any(probs <= 0) or np.any(probs > 1)):
            raise InvalidInputError("LoggedBatch.probabilities must lie in (0, 1]")
        if n and not np.all(np.isfinite(np.asarray(self.rewards, dtype=float))):
            raise InvalidInputError("LoggedBatch.rewards must be finite")

    def __len__(self) -> int:
        return len(self.contexts)

    @property
    def chosen_actions(self) -> list[Action]:
        return [acts[int(i)] for acts, i in zip(self.actions, self.chosen, strict=True)]
