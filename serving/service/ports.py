"""What the decision service needs from each collaborator, as small protocols.

Each piece of state behind a decision — the customer's features, the agent roster, the
experiment assignments, the event log, the policies in service — is reached only
through one of these, so an embedded implementation (in memory, SQLite, files) and a
networked one (Redis, PostgreSQL) are interchangeable. Reading features is
:class:`features.source.FeatureSource` (``get``, ``ping``), re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from features.source import FeatureSource
from policies.routing import SentAction
from serving.eventlog.log import RewardOutcome
from serving.service.policy_store import LoadedPolicy
from training.logs.records import DecisionRecord

__all__ = [
    "AgentRoster",
    "Arm",
    "Assignments",
    "DecisionLog",
    "FeatureSource",
    "PolicySource",
]


@runtime_checkable
class AgentRoster(Protocol):
    """The agents ``agent_routing`` routes among when the caller sends none."""

    def agents(self) -> Sequence[SentAction]:
        """Every agent on the ``agent`` channel, ``continuity`` preset to 0 (the routing
        stage turns them into actions, :func:`policies.routing.agent_candidates`)."""
        ...

    def assigned(self, agent: str) -> None:
        """Count one more case routed to ``agent`` until the roster is read again."""
        ...


@runtime_checkable
class PolicySource(Protocol):
    """The policies in service: one per decision point, and the always-there fallback."""

    fallback: LoadedPolicy
    loaded: bool
    on_swap: Callable[[str, LoadedPolicy], None] | None
    on_load_error: Callable[[str], None] | None

    def get(self, decision_point: str) -> LoadedPolicy:
        """The policy serving ``decision_point`` now (the fallback when it has none)."""
        ...

    def start(self) -> object:
        """Load every decision point's policy and begin following the registry."""
        ...

    def stop(self) -> None: ...


@runtime_checkable
class Arm(Protocol):
    """One customer's experiment variant at one decision point."""

    @property
    def name(self) -> str:
        """The variant logged for the decision (intent to treat)."""
        ...

    @property
    def holdout(self) -> bool:
        """A deterministic holdout arm: it answers even when features are down."""
        ...

    def resolve(self, policies: PolicySource, decision_point: str) -> LoadedPolicy:
        """The policy serving this variant (the champion unless the arm pins one)."""
        ...


@runtime_checkable
class Assignments(Protocol):
    """Sticky assignment of customers to experiment variants."""

    def assign(self, customer_id: str, decision_point: str) -> Arm: ...

    def close(self) -> None: ...


@runtime_checkable
class DecisionLog(Protocol):
    """The durable log a decision is appended to before it is answered, and the shared
    memory of answers given to request ids."""

    last_roll: float

    def open(self) -> object: ...

    def close(self) -> None: ...

    def append_decision(self, record: DecisionRecord) -> None:
        """Log one decision durably (before the answer leaves)."""
        ...

    def find_request(self, request_key: str) -> str | None:
        """The answer already given to ``request_key`` by any replica, if any."""
        ...

    def remember_request(self, request_key: str, response: str) -> None: ...

    def unsynced_seconds(self) -> float: ...

    def record_reward(
        self,
        event_id: str,
        reward: float,
        late: bool,
        source: str = "reward",
        attribution: str | None = None,
    ) -> RewardOutcome:
        """Log a reward (idempotent by event id), from ``/reward`` or an outcome's share."""
        ...

    def first_sighting(self, key: str) -> bool:
        """Whether ``key`` was never claimed before by any replica."""
        ...

    def erase_customer(self, customer_id: str) -> dict[str, int]: ...
