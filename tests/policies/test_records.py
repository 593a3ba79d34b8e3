"""Records built without ``__init__`` (``policies.types.trusted``) equal those their
dataclass ``__init__`` builds, and stay frozen."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from policies.types import Action, Context, Decision, Exclusion, RankedAction, trusted
from simulator.records import (
    EVENT_FIELDS,
    OBSERVATION_FIELDS,
    OUTCOME_FIELDS,
    Observation,
    Outcome,
    SimEvent,
)


def _cases() -> list[tuple[type, tuple[object, ...]]]:
    ctx = Context("c-1", {"tier": "gold"}, {"page": "cart"}, "default", 1.7e9)
    acts = (Action("a", "email"), Action("b", "sms"))
    return [
        (Context, ("c-1", {"tier": "gold"}, {"page": "cart"}, "default", 1.7e9)),
        (RankedAction, ("a", 0.25)),
        (Exclusion, ("b", "quiet_hours")),
        (Decision, ("e", acts[0], 0.5, (RankedAction("a", 0.5),), (), "vw-cb", "1", True)),
        (SimEvent, ("c-1", "purchase", {"value": 3.5}, 1.7e9)),
        (Observation, (3, ctx, acts, acts[:1], (Exclusion("b", "x"),), ())),
        (Outcome, (True, False, True, False, False, True)),
    ]


def test_trusted_records_equal_init_built_ones() -> None:
    make = trusted
    for cls, values in _cases():
        names = tuple(f.name for f in dataclasses.fields(cls))
        fast, slow = make(cls, names, values), cls(*values)
        assert type(fast) is cls and fast == slow and repr(fast) == repr(slow)
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(fast, names[0], values[0])
        with pytest.raises(ValueError):
            make(cls, names, values[:-1])
    assert (EVENT_FIELDS, OUTCOME_FIELDS) == (
        ("customer_id", "type", "properties", "timestamp"),
        ("converted", "opened", "clicked", "complained", "unsubscribed", "churned"),
    )
    assert OBSERVATION_FIELDS[:2] == ("t", "context")
    assert hash(make(RankedAction, ("action_id", "probability"), ("a", 0.25))) == hash(
        RankedAction("a", 0.25)
    )


def test_trusted_context_skips_checks_only() -> None:
    ctx = Context.trusted("c-1", {"x": 1.5}, {}, "default", 2.0)
    assert ctx == Context("c-1", {"x": 1.5}, {}, "default", 2.0)
    assert Context.trusted("c", {"x": np.float64(1)}, {}, "d", 0.0).customer["x"] == 1.0
