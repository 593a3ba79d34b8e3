"""Typed records of the decision log: one row kind per record, fields in column order.

The serving layer writes these records (spool, then Parquet); training, erasure, lift and
the synthetic generator read the same columns. A ``str`` field of JSON text holds what
the policy saw, exactly as encoded when it decided.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One answered ``/decide``: what the policy saw, what it drew and with what probability.

    Times are epoch seconds. ``customer_features``, ``context``, ``actions``,
    ``probabilities`` (aligned with ``actions``) and ``excluded`` are JSON text.
    """

    event_id: str
    request_id: str | None
    timestamp: float
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
    reward_deadline: float
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
    timestamp: float
    counted: bool
    duplicate: bool
    late: bool
    replica: str = ""
