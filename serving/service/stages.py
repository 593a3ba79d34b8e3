"""The stages of one decision, in the order :meth:`DecisionService.decide` runs them:

features → context → candidates and rules → (assignment) → policy → draw → log.

Each stage is a small collaborator over one port (:mod:`serving.service.ports`) and
hands plain values (records, lists, tuples) to the next, so the path allocates nothing
beyond what the decision itself needs. The draw is :mod:`policies.draw`'s; the log stage
is :class:`serving.service.recorder.DecisionRecorder`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from features.errors import FeatureStoreError
from features.schema import DEFAULTS
from policies.catalog import DecisionPoint
from policies.decision import eligible_actions
from policies.draw import decide_among, seed_from_event_id
from policies.errors import InvalidFeatureError
from policies.routing import agent_candidates
from policies.types import Action, Context, Decision, Exclusion
from serving.eventlog.log import dumps
from serving.service.ports import AgentRoster, Arm, FeatureSource, PolicySource

if TYPE_CHECKING:
    from serving.api.fast_decode import DecideBody
    from serving.api.schemas import DecideRequest
    from serving.service.decision_service import ServiceOptions
    from serving.service.policy_store import LoadedPolicy

#: read-only customer records remembered with their log JSON
RECORD_MEMO = 4096

#: what the policy stage answers: the decision, the logged policy version, the logged
#: variant, the apprentice's shadow decision and the degraded reason (None: not degraded)
Choice = tuple[Decision, str, str, Decision | None, str | None]


class FeatureStage:
    """One read of the customer's features; an unreachable store degrades to the defaults.

    Whether the customer is known is the source's answer (:class:`features.source.
    CustomerFeatures` ``known``: the store holds a row for the id, loaded or written by
    events); when the store cannot be read it is unknowable, ``None``.
    """

    def __init__(self, source: FeatureSource) -> None:
        self.source = source

    def read(self, customer_id: str) -> tuple[Mapping[str, Any], bool | None, str | None]:
        """The customer's feature values, whether the customer is known (None: the store
        could not be read) and the degraded reason (``feature_store``) or None."""
        try:
            record = self.source.get(customer_id)
        except FeatureStoreError:
            return DEFAULTS, None, "feature_store"
        return record.values, record.known, None


class ContextStage:
    """The checked :class:`Context` of a decision and its customer features' logged JSON.

    A broken stored value degrades to the defaults (``bad_features``: our problem, not the
    client's); a broken value in the request's own context is the client's 422. A
    read-only record (the Feast source's ``MappingProxyType``, never changed once served)
    is remembered by identity: its next decision skips the check and the encoding.
    """

    def __init__(self) -> None:
        #: id → (read-only customer record, its logged JSON)
        self.records: dict[int, tuple[Mapping[str, Any], str]] = {}

    def build(
        self,
        req: DecideRequest | DecideBody,
        customer: Mapping[str, Any],
        point: str,
        now: float,
        degraded_reason: str | None,
    ) -> tuple[Context, str, str | None]:
        """The context, its customer JSON, and ``degraded_reason`` (or ``bad_features``)."""
        known = self.records.get(id(customer))
        if known is not None and known[0] is customer:
            # a record checked before; the request's context passed the schema, whose
            # checks are Context's (non-empty keys, scalars, finite numbers)
            context = Context.trusted(req.customer_id, customer, req.context, point, now)
            return context, known[1], degraded_reason
        try:
            context = Context(req.customer_id, customer, req.context, point, now)
        except InvalidFeatureError as exc:
            if not (exc.field or "").startswith("customer"):
                raise  # the request's own context: the client's 422
            customer, degraded_reason = DEFAULTS, "bad_features"
            context = Context(req.customer_id, customer, req.context, point, now)
        return context, self._remember(customer), degraded_reason

    def _remember(self, customer: Mapping[str, Any]) -> str:
        encoded = dumps(dict(customer))
        if customer.__class__ is MappingProxyType:
            records = self.records
            records[id(customer)] = (customer, encoded)
            if len(records) > RECORD_MEMO:
                del records[next(iter(records))]
        return encoded


class CandidateStage:
    """The actions a decision chooses among, split by the rules into eligible and excluded.

    The request's actions, else the catalog's; for ``agent_routing`` the caller's agents,
    else the roster's (continuity set), else the catalog's.
    """

    def __init__(self, agents: AgentRoster | None) -> None:
        self.agents = agents

    @staticmethod
    def offered(req: DecideRequest | DecideBody, point: DecisionPoint) -> Sequence[Action]:
        """The request's own actions (outside routing), else the catalog's."""
        if req.actions is not None and point.rules.agent_routing is None:
            return [Action(a.id, a.channel, a.features) for a in req.actions]
        return point.actions

    def split(
        self,
        req: DecideRequest | DecideBody,
        point: DecisionPoint,
        context: Context,
        candidates: Sequence[Action],
    ) -> tuple[list[Action], list[Exclusion], bool]:
        """Eligible actions, exclusions with reasons, and whether the candidates are the
        catalog's own (validated at load, so not checked again)."""
        if point.rules.agent_routing is not None:
            candidates = agent_candidates(context, req.actions, self.agents, list(candidates))
        if candidates is point.actions:
            return (*point.rules.split(context, candidates), True)
        return (*eligible_actions(point.rules, context, candidates), False)

    def routed(self, action: Action) -> None:
        """Count a case routed to a roster agent (one more until the roster is re-read);
        the caller checks it is one (a routing point's roster assignment)."""
        if self.agents is not None:
            self.agents.assigned(action.id)


class PolicyStage:
    """Which policy answers, and its decision drawn by :mod:`policies.draw`.

    The holdout arm answers whatever else is down (deterministic). Otherwise, features
    served, the champion (or the arm's policy) draws — unless the kill switch is on; a
    policy error or a spent time budget answers from the fallback, degraded; in
    apprentice mode the champion's decision is the shadow and the fallback answers.
    The logged variant is the arm's (intent to treat, degraded or not), else ``champion``,
    ``kill_switch``, ``apprentice`` or ``fallback`` (always when degraded).
    """

    def __init__(self, policies: PolicySource) -> None:
        self.policies = policies
        #: the shadow stage's policy of a decision point (None: no staged rollout)
        self.shadows: Callable[[str], LoadedPolicy | None] | None = None

    def choose(
        self,
        arm: Arm | None,
        point: str,
        context: Context,
        eligible: list[Action],
        excluded: list[Exclusion],
        event_id: str,
        degraded_reason: str | None,
        options: ServiceOptions,
        deadline: float,
    ) -> Choice:
        """The decision, its logged policy version, variant, shadow and degraded reason."""
        policies = self.policies
        seed = seed_from_event_id(event_id)
        fallback = policies.fallback
        served, variant = fallback, "fallback"
        shadow: Decision | None = None
        decision: Decision | None = None
        if arm is not None and arm.holdout:
            served = arm.resolve(policies, point)
            decision = decide_among(served.policy, context, eligible, excluded, seed, event_id)
        elif degraded_reason is None:
            champion = policies.get(point) if arm is None else arm.resolve(policies, point)
            if options.kill_switch:
                variant = "kill_switch"
            else:
                try:
                    decision = decide_among(
                        champion.policy, context, eligible, excluded, seed, event_id
                    )
                except Exception:
                    degraded_reason = "policy_error"
                if decision is not None and time.perf_counter() > deadline:
                    decision, degraded_reason = None, "time_budget"
                if decision is not None and options.apprentice:
                    shadow, decision, variant = decision, None, "apprentice"
                elif decision is not None:
                    served, variant = champion, "champion"
        if decision is None:
            decision = decide_among(fallback.policy, context, eligible, excluded, seed, event_id)
        version = served.version if served is not fallback else decision.policy_version
        if degraded_reason is not None:
            variant = "fallback"
        if arm is not None:
            variant = arm.name
        if shadow is None and self.shadows is not None:
            shadow = self._shadow(point, context, eligible, excluded, seed, event_id)
        return decision, version, variant, shadow, degraded_reason

    def _shadow(
        self,
        point: str,
        context: Context,
        eligible: list[Action],
        excluded: list[Exclusion],
        seed: int,
        event_id: str,
    ) -> Decision | None:
        """The shadow stage's decision beside the logged one (same seed); a shadow that
        fails is skipped, never the answer's problem."""
        assert self.shadows is not None
        loaded = self.shadows(point)
        if loaded is None:
            return None
        try:
            return decide_among(loaded.policy, context, eligible, excluded, seed, event_id)
        except Exception:
            return None
