"""Typed answers of Maestro's HTTP API (``/decide``, ``/reward``, ``/events``,
``DELETE /customers/{id}``), built from their JSON bodies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from client.errors import ClientError


@dataclass(frozen=True)
class Ranked:
    """One eligible action and its probability."""

    action_id: str
    probability: float


@dataclass(frozen=True)
class Excluded:
    """One action the rules excluded, with the reason (``no_consent:sms``)."""

    action_id: str
    reason: str


@dataclass(frozen=True)
class Decision:
    """A ``/decide`` answer; ``action_id`` is ``None`` when no action was eligible."""

    event_id: str
    action_id: str | None
    probability: float
    channel: str | None = None
    policy: str = ""
    policy_version: str = ""
    degraded: bool = False
    customer_known: bool | None = None
    ranking: tuple[Ranked, ...] = ()
    excluded: tuple[Excluded, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Decision:
        """Parse a ``/decide`` body; a malformed one raises :class:`ClientError`."""
        try:
            known = data.get("customer_known")
            return cls(
                event_id=str(data["event_id"]), action_id=data.get("action_id"),
                probability=float(data["probability"]), channel=data.get("channel"),
                policy=str(data.get("policy", "")),
                policy_version=str(data.get("policy_version", "")),
                degraded=bool(data.get("degraded")),
                customer_known=None if known is None else bool(known),
                ranking=tuple(Ranked(str(r["action_id"]), float(r["probability"]))
                              for r in data.get("ranking", ())),
                excluded=tuple(Excluded(str(e["action_id"]), str(e["reason"]))
                               for e in data.get("excluded", ())),
                raw=data,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ClientError(f"/decide: malformed answer {data!r}") from exc


@dataclass(frozen=True)
class RewardAck:
    """A ``/reward`` answer: ``duplicate`` when this reward was already counted."""

    event_id: str
    accepted: bool
    duplicate: bool = False

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RewardAck:
        return cls(str(data.get("event_id", "")), bool(data.get("accepted", True)),
                   bool(data.get("duplicate", False)))


@dataclass(frozen=True)
class Erased:
    """A ``DELETE /customers/{id}`` answer: what was erased, by kind."""

    customer_id: str
    counts: dict[str, Any]
