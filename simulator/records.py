"""The simulator's typed records: events, observations, outcomes and step results.

Shapes follow Gymnasium's ``reset``/``step`` (Towers et al., *Gymnasium*, 2024) with
Open Bandit Pipeline's ground truth (Saito et al., NeurIPS Datasets and Benchmarks,
2021): every step carries the true expected reward of every candidate action.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Protocol, runtime_checkable

import numpy as np

from policies.catalog import Catalog
from policies.types import Action, Context, Decision, Exclusion, FeatureValue


@dataclass(frozen=True, slots=True)
class SimEvent:
    """Something a customer did, in the contract's ``POST /events`` vocabulary."""

    customer_id: str
    type: str
    properties: dict[str, FeatureValue]
    timestamp: float


@dataclass(frozen=True, slots=True)
class Observation:
    """One decision to make: the context a policy sees and the catalog split by the rules.

    ``events`` are what the customer did since their last visit (the traffic a live
    Maestro would receive on ``/events`` before this ``/decide``).
    """

    t: int
    context: Context
    candidates: tuple[Action, ...]
    eligible: tuple[Action, ...]
    excluded: tuple[Exclusion, ...]
    events: tuple[SimEvent, ...] = ()

    @property
    def decision_point(self) -> str:
        return self.context.decision_point

    @property
    def customer_id(self) -> str:
        return self.context.customer_id

    @property
    def eligible_index(self) -> np.ndarray:
        """Index into ``candidates`` of each eligible action, shape ``(n_eligible,)``."""
        ids = {a.id: i for i, a in enumerate(self.candidates)}
        return np.array([ids[a.id] for a in self.eligible], dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the customer did in response to the action."""

    converted: bool = False
    opened: bool = False
    clicked: bool = False
    complained: bool = False
    unsubscribed: bool = False
    churned: bool = False


@dataclass(frozen=True, slots=True)
class StepResult:
    """The result of one step.

    ``expected_rewards``: the true expected reward of every candidate action of the
    observation, shape ``(n_candidates,)`` aligned with ``observation.candidates``;
    ``optimal_value`` is its maximum over the *eligible* actions, ``regret`` is
    ``optimal_value - expected_rewards[chosen]``.
    """

    observation: Observation
    action: Action
    chosen: int
    reward: float
    expected_rewards: np.ndarray
    optimal_value: float
    optimal_action: str
    outcome: Outcome
    events: tuple[SimEvent, ...]
    next_observation: Observation
    terminated: bool = False
    truncated: bool = False

    @property
    def regret(self) -> float:
        return self.optimal_value - float(self.expected_rewards[self.chosen])


@runtime_checkable
class Environment(Protocol):
    """What the runner needs from a simulated world."""

    catalog: Catalog

    def reset(self, seed: int | None = None) -> Observation: ...

    def step(self, decision: Decision) -> StepResult: ...

    def expected_rewards(self) -> np.ndarray: ...


def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


#: every field of each record, in order, for building them with ``policies.types.trusted``
#: on the environment's hot path (values the environment made itself)
EVENT_FIELDS, OBSERVATION_FIELDS, OUTCOME_FIELDS, STEP_FIELDS = map(
    _names, (SimEvent, Observation, Outcome, StepResult)
)
