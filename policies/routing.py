"""Contact-centre routing helpers: continuity as a feature, the routing reward, and the
"least busy qualified agent" baseline.

Agents are actions on the ``agent`` channel (see ``CONTRACT.md``); the rules in
:mod:`policies.rules` decide which agents are *qualified* (skill, level, language, free
capacity, retention-only for VIP / high churn-risk customers). Among the qualified ones a
policy chooses; these helpers give it what it needs:

- :func:`with_continuity` adds the action feature ``continuity`` (1 when this agent served
  the customer last, else 0) from the request's ``last_agent_id`` (or the customer
  feature of the same name). Continuity is a *feature* the policy learns the value of,
  never a hard rule: an agent who served the customer before and is at capacity is still
  excluded.
- :func:`agent_candidates` gives serving the candidates of one routing decision in one
  pass: the caller's agents (already validated by the HTTP schema) or, when the caller
  sent none, the agents of the Feast roster (:class:`features.agents.AgentSource`), with
  ``continuity`` set.
- :class:`RoutingCase` is the case of one request read once (required skill, level,
  language, retention-only customer), so the rules check each agent with a few lookups.
- :class:`RoutingReward` turns an interaction's outcome (resolved, handle time, CSAT) into
  the scalar reward posted to ``/reward``, with weights from the catalog.
- :class:`LeastBusyPolicy` is the classic automatic call distributor rule: the qualified
  agent with the lowest occupancy ``load / capacity`` (ties split), for comparison.

References:
    Gans, Koole & Mandelbaum, *Telephone Call Centers: Tutorial, Review, and Research
    Prospects*, Manufacturing & Service Operations Management 5(2), 2003 (skill-based
    routing; "longest idle / least busy agent" as the standard routing baseline).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar, Protocol

import numpy as np

from core.compiled import compiled_or
from policies.base import BasePolicy, greedy_pmf
from policies.errors import CatalogError
from policies.types import Action, Context, FeatureValue

AGENT_CHANNEL = "agent"
CONTINUITY = "continuity"
LAST_AGENT = "last_agent_id"


def last_agent_id(context: Context) -> str | None:
    """The agent who served this customer last: the request's ``last_agent_id``, else the
    customer feature of that name; ``None`` when neither names one."""
    for source in (context.request, context.customer):
        value = source.get(LAST_AGENT)
        if isinstance(value, str) and value:
            return value
    return None


def with_continuity(context: Context, actions: Sequence[Action]) -> list[Action]:
    """``actions`` with the feature ``continuity`` (1/0) set on every agent action.

    A caller-sent ``continuity`` feature is overwritten: the service computes it from the
    customer's history so the policy sees the same definition in serving, training and
    the simulator. Non-agent actions pass through unchanged.
    """
    last = last_agent_id(context)
    out: list[Action] = []
    for action in actions:
        if action.channel != AGENT_CHANNEL:
            out.append(action)
            continue
        value = 1 if last is not None and action.id == last else 0
        if action.features.get(CONTINUITY) == value:
            out.append(action)
            continue
        features: dict[str, FeatureValue] = dict(action.features)
        features[CONTINUITY] = value
        out.append(_trusted_action(action.id, action.channel, features))
    return out


class SentAction(Protocol):
    """An action as a caller or the roster gives it: id, channel and action features."""

    id: str
    channel: str
    features: Mapping[str, FeatureValue]


class AgentRoster(Protocol):
    """Where agents come from when the caller sends none (:class:`features.agents.AgentSource`)."""

    def agents(self) -> Sequence[SentAction]:
        """Every agent on the ``agent`` channel, ``continuity`` preset to 0; the sequence
        is replaced, never changed in place, when an agent changes."""
        ...


class _RosterActions:
    """The :class:`Action` s of a roster's agents, converted once per agent record: the
    roster's records are immutable, so an agent whose record is the same object as at the
    last call keeps its action (one routed case converts one agent, not the roster)."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: tuple[Sequence[SentAction], tuple[Action, ...]] = ((), ())

    def __call__(self, agents: Sequence[SentAction]) -> tuple[Action, ...]:
        last_agents, last_actions = self._last  # one read: safe across request threads
        if agents is last_agents:
            return last_actions
        if len(agents) == len(last_agents):
            actions = tuple(
                prev if agent is was else _as_action(agent)
                for agent, was, prev in zip(agents, last_agents, last_actions, strict=True)
            )
        else:
            actions = tuple(_as_action(agent) for agent in agents)
        self._last = (agents, actions)
        return actions


def _as_action(agent: SentAction) -> Action:
    return _trusted_action(agent.id, agent.channel, dict(agent.features))


_roster_actions = _RosterActions()


def agent_candidates(
    context: Context,
    sent: Iterable[SentAction] | None,
    roster: AgentRoster | None,
    default: list[Action],
) -> list[Action]:
    """The candidates of one ``agent_routing`` decision, ``continuity`` set (as
    :func:`with_continuity` sets it): the caller's ``sent`` actions when there are any,
    else the ``roster``'s agents, else ``default`` (the decision point's catalog).

    ``sent`` must have passed serving's request schema (``serving.api.schemas.ActionIn``), whose
    checks are exactly :class:`Action`'s (non-empty id, known channel, non-empty feature
    names, string/boolean/integer/finite float values): they are not checked again, so an
    agent costs one dict copy here instead of a validated copy plus a continuity copy.
    """
    last = last_agent_id(context)
    if sent is None:
        if roster is None:
            return default
        out = list(_roster_actions(roster.agents()))
        if last is not None:
            for i, action in enumerate(out):
                if action.id == last and action.channel == AGENT_CHANNEL:
                    features = dict(action.features)
                    features[CONTINUITY] = 1
                    out[i] = _trusted_action(action.id, action.channel, features)
                    break
        return out
    return sent_agents(sent, last)


def sent_agents_py(sent: Iterable[SentAction], last: str | None) -> list[Action]:
    """The caller's ``sent`` actions as :class:`Action` s (not checked again), ``continuity``
    set on agents. The pure-Python twin of ``policies._routing.sent_agents``."""
    out = []
    for action in sent:
        features = dict(action.features)
        if action.channel == AGENT_CHANNEL:
            features[CONTINUITY] = 1 if action.id == last else 0
        out.append(_trusted_action(action.id, action.channel, features))
    return out


# the slots of the frozen Action, set directly (what object.__setattr__ does, without the
# lookup): half the cost of building an agent action per request
_SET_ID = Action.id.__set__  # type: ignore[attr-defined]
_SET_CHANNEL = Action.channel.__set__  # type: ignore[attr-defined]
_SET_FEATURES = Action.features.__set__  # type: ignore[attr-defined]


def _trusted_action(action_id: str, channel: str, features: dict[str, FeatureValue]) -> Action:
    """An :class:`Action` built without re-validating: ``features`` are an already checked
    action's plus an int (saves the per-feature check on every agent of every request)."""
    action = object.__new__(Action)
    _SET_ID(action, action_id)
    _SET_CHANNEL(action, channel)
    _SET_FEATURES(action, features)
    return action


@lru_cache(maxsize=4096)
def _names(value: str) -> frozenset[str]:
    """A comma-separated list as a set of lower-case names (memoised: agents' skill and
    language lists repeat across requests)."""
    return frozenset(part.strip().lower() for part in value.split(",") if part.strip())


_NO_NAMES: frozenset[str] = frozenset()


def as_number(value: object, default: float = 0.0) -> float:
    """A feature as a number: numbers and booleans as such, numeric strings parsed, else
    ``default`` (how every rule reads a number; compiled twin in ``policies._routing``)."""
    kind = type(value)
    if kind is int or kind is float or kind is bool:
        return float(value)  # type: ignore[arg-type]
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return default
    return default


@dataclass(frozen=True, slots=True)
class RoutingCase:
    """One routing request's case, read once: the ``required_skill`` / ``language`` of
    the request context (lower case, ``None`` when absent), its ``required_level``, and
    whether the customer may only go to ``retention`` agents (churn risk at or above the
    threshold, or a retention tier). :meth:`reason` is the agent rule of
    :class:`policies.rules.RuleSet` for one agent."""

    skill: str | None
    level: float
    language: str | None
    retention_only: bool

    @classmethod
    def of(cls, context: Context, churn_risk: float, tiers: frozenset[str]) -> RoutingCase:
        req, customer = context.request, context.customer
        skill, language = req.get("required_skill"), req.get("language")
        return cls(
            skill=skill.lower() if isinstance(skill, str) and skill else None,
            level=as_number(req.get("required_level")),
            language=language.lower() if isinstance(language, str) and language else None,
            retention_only=as_number(customer.get("churn_risk")) >= churn_risk
            or str(customer.get("tier", "")).lower() in tiers,
        )

    def reason(self, features: Mapping[str, FeatureValue]) -> str | None:
        """``skill``, ``language``, ``capacity`` or ``retention_only`` (in that order) when
        the agent with these action features may not take the case, else ``None``."""
        return case_reason(self.skill, self.level, self.language, self.retention_only, features)


def case_reason_py(
    skill: str | None,
    level: float,
    language: str | None,
    retention_only: bool,
    features: Mapping[str, FeatureValue],
) -> str | None:
    """:meth:`RoutingCase.reason` of the case ``(skill, level, language, retention_only)``.
    The pure-Python twin of ``policies._routing.case_reason``."""
    raw = features.get("skills")
    skills = _names(raw) if isinstance(raw, str) else _NO_NAMES
    if skill is not None and skill not in skills:
        return "skill"
    if as_number(features.get("level")) < level:
        return "skill"
    if language is not None:
        raw = features.get("languages")
        if not isinstance(raw, str) or language not in _names(raw):
            return "language"
    if as_number(features.get("load")) >= as_number(features.get("capacity")):
        return "capacity"
    if retention_only and "retention" not in skills:
        return "retention_only"
    return None


#: may this agent take the case (:func:`case_reason_py`, compiled when built)
case_reason = compiled_or("policies._routing", "case_reason", case_reason_py)
#: the caller's agents as actions (:func:`sent_agents_py`, compiled when built)
sent_agents = compiled_or("policies._routing", "sent_agents", sent_agents_py)


@dataclass(frozen=True, slots=True)
class RoutingReward:
    """The reward of one routed interaction, linear in its outcome:

    ``reward = resolved·w_resolved + handle_minutes·w_handle_minute + (csat − 3)/2·w_csat``

    with CSAT on the usual 1–5 scale (so the CSAT term lies in ``[−w_csat, w_csat]``).
    Linear on purpose: the expected reward is the same function of the expected outcome,
    which keeps the simulator's ground truth exact. Configured under
    ``rules.agent_routing.reward`` of the ``agent_routing`` decision point.
    """

    resolved: float = 1.0
    handle_minute: float = -0.01
    csat: float = 0.25

    @classmethod
    def from_config(cls, config: Mapping[str, object] | None) -> RoutingReward:
        config = dict(config or {})
        extra = set(config) - {"resolved", "handle_minute", "csat"}
        if extra:
            raise CatalogError(f"agent_routing.reward: unknown keys {sorted(extra)}")
        try:
            return cls(**{k: float(v) for k, v in config.items()})  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise CatalogError(f"agent_routing.reward: weights must be numbers ({exc})") from exc

    def __call__(self, resolved: float, handle_minutes: float, csat: float) -> float:
        """Reward of one outcome (or, given expected values, the expected reward)."""
        return (
            self.resolved * float(resolved)
            + self.handle_minute * float(handle_minutes)
            + self.csat * (float(csat) - 3.0) / 2.0
        )


def occupancy(action: Action) -> float:
    """``load / capacity`` of an agent action (1.0 when the capacity is unknown or 0)."""
    load, cap = action.features.get("load"), action.features.get("capacity")
    try:
        capacity = float(cap)  # type: ignore[arg-type]
        return float(load or 0) / capacity if capacity > 0 else 1.0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 1.0


@dataclass
class LeastBusyPolicy(BasePolicy):
    """The qualified agent with the lowest occupancy ``load / capacity`` (ties share the
    mass): the standard automatic-call-distributor rule, a baseline for learned routing
    (Gans, Koole & Mandelbaum 2003). Stateless; the rules have already dropped agents
    without the skill, the language or free capacity."""

    kind: ClassVar[str] = "least-busy"

    def raw_pmf(self, context: Context, actions: Sequence[Action]) -> list[float]:
        scores = np.array([-occupancy(a) for a in actions], dtype=float)
        return greedy_pmf(scores).tolist()
