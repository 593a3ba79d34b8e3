"""The decision service: features → rules → policy → log → answer. No HTTP here.

One ``decide`` call:

1. an optional ``request_id`` already answered by this process returns the same answer
   (logged once);
2. one read of the customer's features (:class:`features.source.FeatureSource`); a
   failure there answers from the fallback with ``degraded: true``;
3. the decision point's rules split the candidates into eligible and excluded (always,
   whatever answers next);
4. the champion policy draws among the eligible actions, seeded by the signed event id
   (kill switch: the ``rules`` policy; apprentice: ``rules`` answers while the champion's
   choice is logged as the shadow); a policy error, or a time budget spent by then,
   answers from the fallback policy with ``degraded: true`` — never a 500;
5. the decision and everything the policy saw is appended to the event log *before*
   the answer is returned.

The time budget is checked between stages: a stage that blocks is not pre-empted (that
would need a thread hop on every request); the feature source's own timeout bounds it.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import orjson

from features.errors import FeatureStoreError
from features.schema import DEFAULTS
from policies.base import seed_from_event_id
from policies.catalog import Catalog
from policies.decision import decide_among, eligible_actions
from policies.errors import InvalidFeatureError
from policies.routing import agent_candidates
from policies.types import Action, Context, Decision
from serving.api.schemas import DecideRequest, EventRequest, RewardRequest
from serving.dashboard.live import LiveStats
from serving.erasure import erase_with, live_erasers
from serving.errors import LateRewardError, UnknownEventError
from serving.eventlog.log import EventLog, dumps
from serving.service.feature_layer import FeatureEvent, FeatureWriter
from serving.service.ids import EventIdSigner
from serving.service.metrics import Metrics
from serving.service.policy_store import LoadedPolicy, PolicyStore
from training.logs.records import DecisionRecord

if TYPE_CHECKING:
    from serving.api.fast_decode import DecideBody
    from serving.experiments.variants import Experiments


#: read-only customer records (and eligible action lists) remembered with their log JSON
_RECORD_MEMO = 4096


@dataclass(frozen=True, slots=True)
class ServiceOptions:
    time_budget_ms: float = 50.0
    kill_switch: bool = False
    apprentice: bool = False


def _actions_json(actions: list[Action]) -> list[dict[str, Any]]:
    return [{"id": a.id, "channel": a.channel, "features": dict(a.features)} for a in actions]


class DecisionService:
    """Everything behind the HTTP API (see the module docstring)."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        features: Any,
        writer: FeatureWriter,
        policies: PolicyStore,
        log: EventLog,
        signer: EventIdSigner,
        metrics: Metrics | None = None,
        options: ServiceOptions | None = None,
        experiments: Experiments | None = None,
    ) -> None:
        self.catalog = catalog
        self.features = features
        self.writer = writer
        self.policies = policies
        self.log = log
        self.signer = signer
        self.metrics = metrics or Metrics()
        self.options = options or ServiceOptions()
        #: issue #8: variant assignment (None: everyone ``champion``) and the dashboard's
        #: live recorder
        self.experiments = experiments
        self.live = LiveStats()
        #: issue #9: the Feast agent roster ``agent_routing`` routes among without ``actions``
        self.agents = getattr(features, "agents", None)
        self._budget = self.options.time_budget_ms / 1000.0
        self._counters: dict[tuple[str, ...], Any] = {}  # labelled metric children
        self._timers: dict[str, Any] = {}
        #: id → (read-only customer record, its logged JSON): checked once (see decide)
        self._records: dict[int, tuple[Mapping[str, Any], str]] = {}
        self._action_lists: dict[tuple[str, ...], str] = {}
        self.metrics.bind_log(log.unsynced_seconds, lambda: time.time() - log.last_roll)
        policies.on_swap = self._on_swap
        policies.on_load_error = lambda dp: self.metrics.policy_load_errors.labels(dp).inc()

    def _on_swap(self, decision_point: str, loaded: LoadedPolicy) -> None:
        self.metrics.policy_swaps.labels(decision_point).inc()
        self.live.champion(decision_point, loaded.policy.kind, loaded.version, loaded.source)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> DecisionService:
        self.log.open()
        self.policies.start()
        # Start-up leaves ~470k long-lived objects (Feast, MLflow, pandas, the policies); a
        # full collection walking them paused the process 100-290 ms here, a p99 spike on
        # whichever request it hit. Freezing moves them out of the collector's sight.
        gc.collect()
        gc.freeze()
        # Background threads (group commit, Parquet roll, registry polling, event flush)
        # hold the GIL for up to the switch interval (5 ms by default) whenever a request
        # wants it; 1 ms bounds that wait for the event loop at a negligible switch cost.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
        return self

    def close(self) -> None:
        """Stop polling, flush the log to Parquet, release the feature layer."""
        gc.unfreeze()  # what start() froze can be collected again (tests build many)
        self.policies.stop()
        self.log.close()
        if self.experiments is not None:
            self.experiments.close()
        close = getattr(self.features, "close", None)
        if callable(close):
            close()

    def ready(self) -> dict[str, bool]:
        try:
            features_ok = bool(self.features.ping())
        except Exception:
            features_ok = False
        return {"policies": self.policies.loaded, "features": features_ok}

    # ------------------------------------------------------------------ decide
    def decide(self, req: DecideRequest | DecideBody) -> bytes:
        """Answer one decision as the contract's JSON bytes (logged before returning)."""
        start = time.perf_counter()
        request_key = None
        if req.request_id is not None:
            request_key = f"{req.customer_id}\x1f{req.decision_point}\x1f{req.request_id}"
            previous = self.log.find_request(request_key)
            if previous is not None:
                return previous.encode()
        point = self.catalog[req.decision_point]
        routing = point.rules.agent_routing is not None
        candidates: Sequence[Action] = (
            [Action(a.id, a.channel, a.features) for a in req.actions]
            if req.actions is not None and not routing
            else point.actions
        )
        now = time.time()
        degraded_reason = None
        try:
            customer: Mapping[str, Any] = self.features.get(req.customer_id).values
        except FeatureStoreError:
            customer, degraded_reason = DEFAULTS, "feature_store"
        known = self._records.get(id(customer))
        if known is not None and known[0] is customer:
            # a read-only record checked before; the request's context passed the schema,
            # whose checks are Context's (non-empty keys, scalars, finite numbers)
            context = Context.trusted(req.customer_id, customer, req.context, point.name, now)
            customer_json = known[1]
        else:
            try:
                context = Context(req.customer_id, customer, req.context, point.name, now)
            except InvalidFeatureError as exc:
                if not (exc.field or "").startswith("customer"):
                    raise  # the request's own context: the client's 422
                # a broken value in the store is our problem, not the client's: degrade
                customer, degraded_reason = DEFAULTS, "bad_features"
                context = Context(req.customer_id, customer, req.context, point.name, now)
            customer_json = self._remember_record(customer)
        if routing:  # issue #9: the caller's agents, else Feast's; continuity is a feature
            candidates = agent_candidates(context, req.actions, self.agents, list(candidates))
        if candidates is point.actions:  # the catalog's own actions: validated at load
            eligible, excluded = point.rules.split(context, candidates)
        else:
            eligible, excluded = eligible_actions(point.rules, context, candidates)

        event_id = self.signer.issue(now + point.reward_window_seconds)
        seed = seed_from_event_id(event_id)
        fallback = self.policies.fallback
        served: LoadedPolicy = fallback
        variant = "fallback"
        shadow: Decision | None = None
        decision: Decision | None = None
        arm = (
            self.experiments.assign(req.customer_id, point.name)
            if self.experiments is not None
            else None
        )
        if arm is not None and arm.holdout:  # deterministic arm, whatever else is down
            served = arm.resolve(self.policies, point.name)
            decision = decide_among(served.policy, context, eligible, excluded, seed, event_id)
        elif degraded_reason is None:
            champion = (
                self.policies.get(point.name)
                if arm is None
                else arm.resolve(self.policies, point.name)
            )
            if self.options.kill_switch:
                variant = "kill_switch"
            else:
                try:
                    decision = decide_among(
                        champion.policy, context, eligible, excluded, seed, event_id
                    )
                except Exception:
                    degraded_reason = "policy_error"
                if decision is not None and time.perf_counter() - start > self._budget:
                    decision, degraded_reason = None, "time_budget"
                if decision is not None and self.options.apprentice:
                    shadow, decision, variant = decision, None, "apprentice"
                elif decision is not None:
                    served, variant = champion, "champion"
        if decision is None:
            decision = decide_among(fallback.policy, context, eligible, excluded, seed, event_id)
        degraded = degraded_reason is not None
        if degraded:
            variant = "fallback"
            self.metrics.degraded.labels(point.name, degraded_reason).inc()
        if arm is not None:
            variant = arm.name  # intent to treat: the assigned variant, degraded or not

        action = decision.action
        probs = {r.action_id: r.probability for r in decision.ranking}
        self.log.append_decision(
            DecisionRecord(
                event_id=event_id,
                request_id=req.request_id,
                timestamp=now,
                customer_id=req.customer_id,
                decision_point=point.name,
                customer_features=customer_json,
                context=dumps(req.context),
                actions=self._logged_actions(point.name, eligible, candidates is point.actions),
                probabilities=dumps([probs.get(a.id, 0.0) for a in eligible]),
                excluded=dumps(
                    [{"action_id": e.action_id, "reason": e.reason} for e in excluded]
                ),
                action_id=action.id if action else None,
                channel=action.channel if action else None,
                probability=decision.probability,
                policy=decision.policy,
                policy_version=served.version
                if served is not fallback
                else decision.policy_version,
                variant=variant,
                explored=decision.explored,
                degraded=degraded,
                reward_deadline=now + point.reward_window_seconds,
                shadow_policy=shadow.policy if shadow else None,
                shadow_policy_version=shadow.policy_version if shadow else None,
                shadow_action_id=shadow.action.id if shadow and shadow.action else None,
                shadow_probability=shadow.probability if shadow else None,
            )
        )
        body = orjson.dumps(
            {
                "event_id": event_id,
                "action_id": action.id if action else None,
                "channel": action.channel if action else None,
                "probability": decision.probability,
                "ranking": [
                    {"action_id": r.action_id, "probability": r.probability}
                    for r in decision.ranking
                ],
                "excluded": [{"action_id": e.action_id, "reason": e.reason} for e in excluded],
                "policy": decision.policy,
                "policy_version": served.version
                if served is not fallback
                else decision.policy_version,
                "degraded": degraded,
            }
        )
        if request_key is not None:
            self.log.remember_request(request_key, body.decode())
        if routing and req.actions is None and action is not None and self.agents is not None:
            self.agents.assigned(action.id)  # one more case until the roster is re-read
        labels = (
            point.name,
            action.id if action else "none",
            action.channel if action else "none",
            decision.policy,
            decision.policy_version,
        )
        counter = self._counters.get(labels)
        if counter is None:  # prometheus' labels() costs ~5 µs; the children are fixed
            counter = self._counters[labels] = self.metrics.decisions.labels(*labels)
        counter.inc()
        elapsed = time.perf_counter() - start
        timer = self._timers.get(point.name)
        if timer is None:
            timer = self._timers[point.name] = self.metrics.latency.labels(point.name)
        timer.observe(elapsed)
        self.live.record(now, variant, action.channel if action else None, degraded, elapsed)
        return body

    def _remember_record(self, customer: Mapping[str, Any]) -> str:
        """The logged JSON of a checked customer record. A read-only record (the feature
        source's ``MappingProxyType``, never changed once served) is remembered by
        identity: its next decision skips the check and the encoding."""
        encoded = dumps(dict(customer))
        if customer.__class__ is MappingProxyType:
            records = self._records
            records[id(customer)] = (customer, encoded)
            if len(records) > _RECORD_MEMO:
                del records[next(iter(records))]
        return encoded

    def _logged_actions(self, point: str, eligible: list[Action], from_catalog: bool) -> str:
        """The logged ``actions`` column; for the catalog's (immutable) actions, memoised per
        eligible subset."""
        if not from_catalog:
            return dumps(_actions_json(eligible))
        key = (point, *(a.id for a in eligible))
        encoded = self._action_lists.get(key)
        if encoded is None:
            encoded = dumps(_actions_json(eligible))
            if len(self._action_lists) < _RECORD_MEMO:
                self._action_lists[key] = encoded
        return encoded

    # ------------------------------------------------------------------ rewards, events
    def reward(self, req: RewardRequest) -> dict[str, Any]:
        parsed = self.signer.verify(req.event_id)
        if parsed is None:
            self.metrics.rewards.labels("unknown").inc()
            raise UnknownEventError(f"event id {req.event_id!r} was never issued by this service")
        late = time.time() > parsed.deadline
        outcome = self.log.record_reward(req.event_id, req.reward, late)
        if late:
            self.metrics.rewards.labels("late").inc()
            raise LateRewardError(
                f"event {req.event_id} is past its reward window; the reward is kept, not learned"
            )
        self.metrics.rewards.labels("duplicate" if outcome.duplicate else "accepted").inc()
        if outcome.accepted:
            self.metrics.reward_sum.inc(req.reward)
        return {"event_id": req.event_id, "accepted": True, "duplicate": outcome.duplicate}

    def ingest(self, req: EventRequest) -> dict[str, Any]:
        ts = req.timestamp.timestamp() if req.timestamp is not None else 0.0  # 0: now
        self.writer.ingest(FeatureEvent(req.customer_id, req.type, dict(req.properties), ts))
        self.metrics.events.labels(req.type).inc()
        return {"accepted": True, "customer_id": req.customer_id, "type": req.type}

    def erase(self, customer_id: str) -> dict[str, Any]:
        """``DELETE /customers/{id}``: every store of this service forgets the customer."""
        table = self.experiments.table if self.experiments is not None else None
        erased = erase_with(live_erasers(self.writer, self.log, table), customer_id)
        return {"customer_id": customer_id, "erased": erased}


def parse_json(body: bytes) -> Any:
    return orjson.loads(body)
