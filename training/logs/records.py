"""Typed records of the decision log: one row kind per record, fields in column order.

The serving layer writes these records (spool, then Parquet); training, erasure, lift and
the synthetic generator read the same columns. The Parquet schema is derived from the
fields (:mod:`training.logs.schema`): a field's name is its column's, ``str`` is a string
column, ``float`` a float64, ``bool`` a bool and :data:`EpochSeconds` a
``timestamp[us, UTC]`` column; ``X | None`` may be null. A ``str`` field of JSON text holds
what the policy saw, exactly as encoded when it decided. ``replica`` stays each record's
last field: the spool writer puts its own name there (:mod:`serving.eventlog.log`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

#: marks a float field of epoch seconds stored as a ``timestamp[us, UTC]`` column
AS_TIMESTAMP = "timestamp[us, UTC]"

#: a time as epoch seconds; its column is a UTC timestamp in microseconds
EpochSeconds = Annotated[float, AS_TIMESTAMP]


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One answered ``/decide``: what the policy saw, what it drew and with what probability.

    Times are epoch seconds. ``customer_features``, ``context``, ``actions``,
    ``probabilities`` (aligned with ``actions``) and ``excluded`` are JSON text.
    """

    event_id: str
    request_id: str | None
    timestamp: EpochSeconds
    customer_id: str
    decision_point: str
    customer_features: str
    context: str
    actions: str
    probabilities: str
    excluded: str
    action_id: str | None
    channel: str | None
    probability: float
    policy: str
    policy_version: str
    variant: str
    explored: bool
    degraded: bool
    reward_deadline: EpochSeconds
    shadow_policy: str | None
    shadow_policy_version: str | None
    shadow_action_id: str | None
    shadow_probability: float | None
    replica: str = ""


@dataclass(frozen=True, slots=True)
class RewardRecord:
    """One reward posted for an event id: counted once, flagged duplicate or late."""

    event_id: str
    reward: float
    timestamp: EpochSeconds
    counted: bool
    duplicate: bool
    late: bool
    replica: str = ""
