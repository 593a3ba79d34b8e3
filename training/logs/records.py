"""Typed records of the decision log: one row kind per record, fields in column order.

The serving layer writes these records (spool, then Parquet); training, erasure, lift and
the synthetic generator read the same columns. The Parquet schema is derived from the
fields (:mod:`training.logs.schema`): a field's name is its column's, ``str`` is a string
column, ``float`` a float64, ``bool`` a bool and :data:`EpochSeconds` a
``timestamp[us, UTC]`` column; ``X | None`` may be null. A ``str`` field of JSON text holds
what the policy saw, exactly as encoded when it decided. ``replica`` stays each record's
last field: the spool writer puts its own name there (:mod:`serving.eventlog.log`).

Parquet datasets (read with ``pandas.read_parquet(dir, schema=DECISION_SCHEMA)`` or
:func:`training.logs.dataset.read_parquet_dir`, so parts written before a column existed
read with it null; dedupe by ``event_id``, since a request retried on another replica may
be logged by both):

``$MAESTRO_HOME/logs/decisions/part-*.parquet`` — one row per answered ``/decide``:

=====================  ===================  ==============================================
column                 type                 meaning
=====================  ===================  ==============================================
event_id               string               signed id returned to the caller
request_id             string (nullable)    the caller's idempotency key
timestamp              timestamp[us, UTC]   decision time
customer_id            string
decision_point         string
customer_features      string (JSON)        exact customer features the policy saw
context                string (JSON)        the request's context as the policy saw it
actions                string (JSON)        eligible actions ``[{id, channel, features}]``
probabilities          string (JSON)        pmf over ``actions`` (same order), sums to 1
excluded               string (JSON)        ``[{action_id, reason}]`` removed by rules
action_id / channel    string (nullable)    chosen action (null: nothing eligible)
probability            float64              probability the chosen action was drawn with
policy / policy_version string              the policy that answered (``rules`` if degraded)
variant                string               ``champion`` | ``kill_switch`` | ``apprentice``
                                            | ``fallback``; with experiments configured,
                                            the assigned variant (``holdout``, ``rules``,
                                            ``champion``, a challenger's name), degraded
                                            or not (see serving.experiments.variants)
explored               bool                 the draw was not the policy's greedy choice
degraded               bool                 a fallback answered (learn with care)
customer_known         bool (nullable)      the feature store held a row for the customer
                                            (false: decided from defaults; null: the store
                                            could not be read, or a row logged before the
                                            column existed)
reward_deadline        timestamp[us, UTC]   end of the reward window
shadow_policy, shadow_policy_version, shadow_action_id, shadow_probability
                                            apprentice mode: what the learned policy
                                            would have chosen; with a ``shadow`` stage,
                                            what the shadow would have chosen (null
                                            otherwise)
anonymous_id           string (nullable)    the request's anonymous id (``customer_id`` is
                                            the customer it was linked to, or
                                            ``anon:<anonymous_id>`` before it); null without
                                            one, and in rows logged before the column existed
segments               list<string> (nullable)
                                            the dynamic segments (``triggers.yaml``) the
                                            customer was in when deciding; null when none
                                            are declared, or for a row logged before the
                                            column existed
learned_since          int64 (nullable)     online learning: updates the served model had
                                            learnt since its registered ``policy_version``
                                            was loaded; null without online learning
shadow_logged_probability
                       float64 (nullable)   the shadow stage's probability of the logged
                                            action (off-policy weight numerator); null
                                            without a shadow, and in older rows
replica                string               the spool (process) that logged the row
=====================  ===================  ==============================================

``$MAESTRO_HOME/logs/rewards/part-*.parquet`` — one row per ``/reward`` call that named
an issued event id, and one per decision an outcome event was attributed to: ``event_id``,
``reward`` (float64), ``timestamp``, ``counted`` (counted: not late, and not a duplicate in
``first`` mode), ``duplicate``, ``late``, ``source`` (``reward`` or ``outcome:<type>``),
``attribution`` (the rule that gave an outcome's share; null for ``/reward``), ``replica``.
Training uses ``counted`` rows only (summing them in ``sum`` mode) and gives events with
none the decision point's default reward once the window is over: an attributed share is
learned exactly as a posted reward is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

#: marks a float field of epoch seconds stored as a ``timestamp[us, UTC]`` column
AS_TIMESTAMP = "timestamp[us, UTC]"

#: a time as epoch seconds; its column is a UTC timestamp in microseconds
EpochSeconds = Annotated[float, AS_TIMESTAMP]


# Neither frozen nor slotted: a frozen __init__ costs more on every /decide, and orjson
# encodes an instance's __dict__ several times faster than it reads slots one by one.
@dataclass
class DecisionRecord:
    """One answered ``/decide``: what the policy saw, what it drew and with what probability.
    Built once per decision and never changed after.

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
    customer_known: bool | None
    reward_deadline: EpochSeconds
    shadow_policy: str | None
    shadow_policy_version: str | None
    shadow_action_id: str | None
    shadow_probability: float | None
    anonymous_id: str | None = None
    segments: list[str] | None = None
    learned_since: int | None = None
    shadow_logged_probability: float | None = None
    replica: str = ""


@dataclass(frozen=True, slots=True)
class RewardRecord:
    """One reward posted for an event id: counted once, flagged duplicate or late.

    ``source``: ``reward`` (``POST /reward``) or ``outcome:<event type>`` (an outcome event
    turned into a reward); ``attribution``: the rule that gave this decision its share of an
    outcome (``last_touch``, ``linear``, ``time_decay``), null for ``/reward``. Both are null
    in rows logged before the columns existed."""

    event_id: str
    reward: float
    timestamp: EpochSeconds
    counted: bool
    duplicate: bool
    late: bool
    source: str | None = None
    attribution: str | None = None
    replica: str = ""
