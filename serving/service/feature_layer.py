"""What the serving layer needs from the feature layer, and the in-memory implementation.

Reading features is :class:`features.source.FeatureSource` (``get``, ``ping``). ``POST
/events`` and ``DELETE /customers/{id}`` need two more verbs, the :class:`FeatureWriter`
protocol: ``ingest(event)`` (the real-time features it changes are visible to the next
``get``) and ``erase(customer_id)`` (counts of what was removed).
:class:`InMemoryFeatureLayer` implements both protocols for tests and demos, with the
feature layer's own event semantics; :class:`features.layer.FeastFeatureLayer` is the
Feast-backed implementation ``maestro serve`` uses (see :mod:`serving.factory`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from features.events import apply_event, parse_event
from features.source import CustomerFeatures, FeatureValue, InMemoryFeatureSource
from policies.routing import AgentRoster


@dataclass(frozen=True, slots=True)
class FeatureEvent:
    """One customer event (``POST /events``); ``timestamp`` in epoch seconds (0: now)."""

    customer_id: str
    type: str
    properties: Mapping[str, FeatureValue] = field(default_factory=dict)
    timestamp: float = 0.0


@runtime_checkable
class FeatureWriter(Protocol):
    def ingest(self, event: FeatureEvent) -> None:
        """Apply ``event``; raise :class:`InvalidEventError` (422) for a malformed one."""
        ...

    def erase(self, customer_id: str) -> dict[str, int]:
        """Remove every feature row of ``customer_id``; return counts per store."""
        ...


class InMemoryFeatureLayer:
    """:class:`FeatureSource` + :class:`FeatureWriter` over an :class:`InMemoryFeatureSource`."""

    #: no agent roster in memory: ``agent_routing`` routes among the caller's agents, else
    #: the catalog's (the Feast layer carries the workspace's roster)
    agents: AgentRoster | None = None

    def __init__(self, source: InMemoryFeatureSource | None = None) -> None:
        self.source = source or InMemoryFeatureSource()

    @property
    def available(self) -> bool:
        return self.source.available

    @available.setter
    def available(self, value: bool) -> None:
        self.source.available = value

    def get(self, customer_id: str) -> CustomerFeatures:
        return self.source.get(customer_id)

    def ping(self) -> bool:
        return self.source.ping()

    def ingest(self, event: FeatureEvent) -> None:
        """The feature layer's own event semantics (:mod:`features.events`), in memory."""
        parsed = parse_event(event)
        current = self.source.get(event.customer_id).values
        self.source.update(event.customer_id, apply_event(parsed, current))

    def erase(self, customer_id: str) -> dict[str, int]:
        return {"online": self.source.erase(customer_id)}
