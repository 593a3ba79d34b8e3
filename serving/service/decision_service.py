"""The decision service: features → rules → policy → log → answer. No HTTP here.

One ``decide`` call runs the stages of :mod:`serving.service.stages` in order:

1. replay: an optional ``request_id`` already answered returns the same answer (logged
   once);
2. features: one read of the customer's features (:class:`features.source.FeatureSource`);
   a failure there answers from the fallback with ``degraded: true``; a customer the store
   holds no row for is decided for from the defaults, answered and logged with
   ``customer_known: false`` and counted in ``maestro_unknown_customer_decisions_total``;
3. context: the checked :class:`~policies.types.Context` (a broken stored value degrades);
4. candidates and rules: the request's, the catalog's or the agent roster's actions, split
   into eligible and excluded (always, whatever answers next); then the contact stage
   (:mod:`serving.service.contacts`): one read of the customer's contact history and budget
   use, whose caps, cool-downs, repetition and exhausted budgets exclude more;
5. assignment: the customer's experiment variant, if experiments are configured;
6. policy and draw: the champion's (or the variant's) pmf, drawn by :mod:`policies.draw`
   with the signed event id's seed (kill switch: the ``rules`` policy; apprentice:
   ``rules`` answers while the champion's choice is logged as the shadow); a policy error,
   or a time budget spent by then, answers from the fallback with ``degraded: true`` —
   never a 500;
   the decision's contact and budget unit are committed atomically (re-run on the new
   history when a concurrent decision got there first);
7. log: the decision and everything the policy saw is appended to the event log *before*
   the answer is returned.

The time budget is checked between stages: a stage that blocks is not pre-empted (that
would need a thread hop on every request); the feature source's own timeout bounds it.
Each collaborator is a protocol of :mod:`serving.service.ports`.
"""

from __future__ import annotations

import gc
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from features.events import EVENT_TYPES as FEATURE_EVENTS
from policies.attribution import OUTCOME_EVENTS
from policies.catalog import Catalog
from policies.segments import SegmentSet
from policies.types import Action, Exclusion
from serving.api.schemas import DecideRequest, EventRequest, RewardRequest
from serving.dashboard.live import LiveStats
from serving.erasure import erase_with, live_erasers
from serving.errors import LateRewardError, UnknownEventError
from serving.service.contacts import CONTACT_EVENTS, ContactStage
from serving.service.drift import DriftMonitor
from serving.service.feature_layer import FeatureEvent, FeatureWriter
from serving.service.identity import IdentityStage
from serving.service.ids import EventIdSigner
from serving.service.metrics import Metrics
from serving.service.outcomes import OutcomeStage
from serving.service.policy_store import LoadedPolicy
from serving.service.ports import (
    AgentRoster,
    Assignments,
    DecisionLog,
    FeatureSource,
    PolicySource,
)
from serving.service.recorder import DecisionRecorder, shadow_probability_of
from serving.service.stages import (
    CandidateStage,
    Choice,
    ContextStage,
    FeatureStage,
    PolicyStage,
)
from serving.state.identity import IdentityStore, anonymous_profile

if TYPE_CHECKING:
    from serving.api.fast_decode import DecideBody
    from serving.delivery.factory import Delivery
    from serving.rollout.rollout import Rollout
    from serving.triggers.runtime import Triggers


@dataclass(frozen=True, slots=True)
class ServiceOptions:
    time_budget_ms: float = 50.0
    kill_switch: bool = False
    apprentice: bool = False


class DecisionService:
    """Everything behind the HTTP API (see the module docstring)."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        features: FeatureSource,
        writer: FeatureWriter,
        policies: PolicySource,
        log: DecisionLog,
        signer: EventIdSigner,
        metrics: Metrics | None = None,
        options: ServiceOptions | None = None,
        experiments: Assignments | None = None,
        agents: AgentRoster | None = None,
        contacts: ContactStage | None = None,
        identity: IdentityStore | None = None,
        segments: SegmentSet | None = None,
        drift: DriftMonitor | None = None,
        triggers: Triggers | None = None,
    ) -> None:
        self.catalog = catalog
        #: the dynamic segments of ``triggers.yaml``, logged with each decision
        self.segments = segments if segments else None
        self.features = features
        self.writer = writer
        self.policies = policies
        self.log = log
        self.signer = signer
        self.metrics = metrics or Metrics()
        self.options = options or ServiceOptions()
        #: variant assignment (None: everyone ``champion``)
        self.experiments = experiments
        #: the staged rollout (shadow, canary, watched champion; None: not staged)
        self.rollout: Rollout | None = None
        #: the dashboard's live recorder
        self.live = LiveStats()
        #: the roster ``agent_routing`` routes among when the caller sends no ``actions``
        self.agents = agents
        #: drift detectors and online learning (None: off, as in unit tests)
        self.drift = drift
        #: contact history, caps and budgets (None: no contact policy, as in unit tests)
        self.contacts = contacts
        #: the delivery queue of triggered decisions (None: no destination declared); set
        #: by the factory, its worker started by the app's lifespan
        self.delivery: Delivery | None = None
        #: anonymous ids' links and journal (None: anonymous ids are their own profiles)
        self.identity = (
            None if identity is None
            else IdentityStage(identity, writer, None if contacts is None else contacts.store)
        )
        #: the triggers of ``triggers.yaml`` (None: none declared): events start and cancel
        #: their timers, a scheduler thread fires them through :meth:`decide`
        self.triggers = triggers
        #: outcome events (purchase, clicks, ...) → attributed rewards
        self.outcomes = OutcomeStage(
            catalog, None if contacts is None else contacts.store, signer, log
        )
        self._budget = self.options.time_budget_ms / 1000.0
        self._features = FeatureStage(features)
        self._contexts = ContextStage()
        self._candidates = CandidateStage(agents)
        self._policy = PolicyStage(policies)
        self._recorder = DecisionRecorder(log)
        #: id → (read-only customer record, its logged JSON), see ContextStage
        self._records = self._contexts.records
        self._counters: dict[tuple[str, ...], Any] = {}  # labelled metric children
        self._timers: dict[str, Any] = {}
        self._unknown: dict[str, Any] = {}  # per decision point
        self.metrics.bind_log(log.unsynced_seconds, lambda: time.time() - log.last_roll)
        policies.on_swap = self._on_swap
        policies.on_load_error = lambda dp: self.metrics.policy_load_errors.labels(dp).inc()

    def _on_swap(self, decision_point: str, loaded: LoadedPolicy) -> None:
        self.metrics.policy_swaps.labels(decision_point).inc()
        if self.drift is not None:
            self.drift.reset(decision_point)
        self.live.champion(decision_point, loaded.policy.kind, loaded.version, loaded.source)

    def use_rollout(self, rollout: Rollout) -> None:
        """Serve the stages of ``rollout``: its shares, its shadows, its guardrails."""
        self.rollout = rollout
        self._policy.shadows = rollout.shadow

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> DecisionService:
        self.log.open()
        self.policies.start()
        if self.rollout is not None:
            self.rollout.start()
        # Start-up leaves ~470k long-lived objects (Feast, MLflow, pandas, the policies); a
        # full collection walking them paused the process 100-290 ms here, a p99 spike on
        # whichever request it hit. Freezing moves them out of the collector's sight.
        gc.collect()
        gc.freeze()
        # Background threads (group commit, Parquet roll, registry polling, event flush)
        # hold the GIL for up to the switch interval (5 ms by default) whenever a request
        # wants it; 1 ms bounds that wait for the event loop at a negligible switch cost.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
        if self.triggers is not None:  # last: a timer fires through a started service
            self.triggers.start(self.decide)
        return self

    def close(self) -> None:
        """Stop polling, flush the log to Parquet, release the feature layer."""
        gc.unfreeze()  # what start() froze can be collected again (tests build many)
        if self.triggers is not None:  # first: no timer fires into a closing log
            self.triggers.stop()
        if self.rollout is not None:
            self.rollout.stop()
        self.policies.stop()
        self.log.close()
        if self.experiments is not None:
            self.experiments.close()
        if self.contacts is not None:
            self.contacts.store.close()
        if self.identity is not None:
            self.identity.store.close()
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
        if req.anonymous_id is not None and req.customer_id is None:
            req = self._anonymous(req)  # type: ignore[arg-type]  # only the schema allows it
        if req.request_id is not None:  # the replay stage (skipped, a call less, without one)
            previous = self._recorder.replay(req)
            if previous is not None:
                return previous
        point = self.catalog.decision_points.get(req.decision_point)
        if point is None:
            point = self.catalog[req.decision_point]  # raises: unknown decision point
        name = point.name
        # the catalog's actions unless the request brings its own
        offered = point.actions if req.actions is None else self._candidates.offered(req, point)
        now = time.time()
        customer, known, degraded_reason = self._features.read(req.customer_id)
        context, customer_json, degraded_reason = self._contexts.build(
            req, customer, name, now, degraded_reason
        )
        segments = None if self.segments is None else self.segments.members(context)
        eligible, excluded, from_catalog = self._candidates.split(req, point, context, offered)
        event_id = self.signer.issue(now + point.reward_window_seconds)
        experiments = self.experiments
        arm = None if experiments is None else experiments.assign(req.customer_id, name)
        if self.rollout is not None:  # a canary's or a watched champion's share
            arm = self.rollout.arm(arm, req.customer_id, name)

        def choose(elig: list[Action], excl: list[Exclusion]) -> Choice:
            return self._policy.choose(
                arm, name, context, elig, excl, event_id, degraded_reason,
                self.options, start + self._budget,
            )

        choice, eligible, excluded, learned = self._choose(
            req, point, now, eligible, excluded, event_id, choose
        )
        decision, _, variant, _, degraded_reason = choice
        if degraded_reason is not None:
            self.metrics.degraded.labels(name, degraded_reason).inc()
        if known is False:
            self._count_unknown(name)
        body = self._recorder.record(
            req, point, now, event_id, customer_json, known, eligible, excluded, from_catalog,
            choice, segments, learned,
        )
        drift = self.drift
        if drift is not None and choice[2] == "champion" and decision.action is not None:
            drift.decided(event_id, self.policies.get(name), context, eligible,
                          decision.action, decision.probability)  # fmt: skip
        action = decision.action
        if action is not None and req.actions is None and point.rules.agent_routing is not None:
            self._candidates.routed(action)  # a case routed to a roster agent
        # observe: decision count, latency and the dashboard's live stats
        channel = action.channel if action else None
        labels = (name, action.id if action else "none", action.channel if action else "none",
                  decision.policy, decision.policy_version)  # fmt: skip
        counter = self._counters.get(labels)
        if counter is None:  # prometheus' labels() costs ~5 µs; the children are fixed
            counter = self._counters[labels] = self.metrics.decisions.labels(*labels)
        counter.inc()
        elapsed = time.perf_counter() - start
        timer = self._timers.get(name)
        if timer is None:
            timer = self._timers[name] = self.metrics.latency.labels(name)
        timer.observe(elapsed)
        self.live.record(now, variant, channel, degraded_reason is not None, elapsed)
        if self.rollout is not None:
            self._observe_rollout(name, choice, event_id, elapsed)
        return body

    def _choose(
        self, req: DecideRequest | DecideBody, point: Any, now: float, eligible: list[Action],
        excluded: list[Exclusion], event_id: str, choose: Any,
    ) -> tuple[Choice, list[Action], list[Exclusion], int | None]:  # fmt: skip
        """The policy's choice through the contact stage's caps and budgets if any, and
        the online updates its model had (None: no online learning). With online learning
        the drift monitor's lock is held: VW must not learn while it predicts."""
        drift = self.drift
        if drift is None or not drift.options.online:
            return (*self._contact_choice(req, point, now, eligible, excluded, event_id, choose),
                    None)  # fmt: skip
        with drift.lock:
            found = self._contact_choice(req, point, now, eligible, excluded, event_id, choose)
            return (*found, drift.learned_since(point.name))

    def _contact_choice(
        self, req: DecideRequest | DecideBody, point: Any, now: float, eligible: list[Action],
        excluded: list[Exclusion], event_id: str, choose: Any,
    ) -> tuple[Choice, list[Action], list[Exclusion]]:  # fmt: skip
        if self.contacts is None:
            return choose(eligible, excluded), eligible, excluded
        # caps and budgets over the contact history, committed with the answer
        return self.contacts.decide(  # type: ignore[no-any-return]
            req.customer_id, point, now, eligible, excluded, event_id, choose
        )

    def _observe_rollout(self, point: str, choice: Choice, event_id: str, elapsed: float) -> None:
        """Hand the staged rollout one decision: its arm, degraded flag, latency and the
        shadow's importance weight on the logged action."""
        decision, _, variant, shadow, degraded_reason = choice
        weight = None
        if shadow is not None and decision.probability > 0:
            action_id = decision.action.id if decision.action else None
            weight = (shadow_probability_of(shadow, action_id) or 0.0) / decision.probability
        assert self.rollout is not None
        self.rollout.decided(
            point, variant, event_id, degraded_reason is not None, elapsed, weight
        )

    def _anonymous(self, req: DecideRequest) -> DecideRequest:
        """A decide naming only an anonymous id, for the profile it acts on."""
        anon = str(req.anonymous_id)
        if self.identity is None:
            profile = anonymous_profile(anon)
        else:
            profile = self.identity.profile(anon)[0]
        return req.model_copy(update={"customer_id": profile})

    def _count_unknown(self, point: str) -> None:
        """Count one decision for a customer the feature store holds no row for."""
        counter = self._unknown.get(point)
        if counter is None:
            counter = self._unknown[point] = self.metrics.unknown_customers.labels(point)
        counter.inc()

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
            if self.drift is not None:
                self.drift.rewarded(req.event_id, req.reward, self.policies.get)
            if self.rollout is not None:
                self.rollout.rewarded(req.event_id, req.reward)
        return {"event_id": req.event_id, "accepted": True, "duplicate": outcome.duplicate}

    def ingest(self, req: EventRequest) -> dict[str, Any]:
        """``POST /events``: a customer's or an anonymous visitor's event, or ``identify``."""
        ts = req.timestamp.timestamp() if req.timestamp is not None else 0.0  # 0: now
        answer = {"accepted": True, "customer_id": req.customer_id, "type": req.type}
        if req.type == "identify":
            if self.identity is None:
                raise UnknownEventError("identify: this service keeps no identity links")
            answer.update(self.identity.identify(str(req.customer_id), req.properties))
            self.metrics.events.labels(req.type).inc()
            return answer
        cid, journal = req.customer_id, False
        if cid is None:  # an anonymous visitor's: the linked customer's, or its own profile
            anon = str(req.anonymous_id)
            answer["anonymous_id"] = anon
            if self.identity is None:
                cid, linked = anonymous_profile(anon), False
            else:
                cid, linked = self.identity.profile(anon)
            journal = not linked and self.identity is not None
        if req.type in CONTACT_EVENTS and self.contacts is not None:
            if req.type == "message_sent":
                self.contacts.sent(cid, req.properties, ts or time.time())
            else:
                self.contacts.failed(req.properties)
            self._note_delivery(cid, req.type, ts)
            self.metrics.events.labels(req.type).inc()
            return answer
        outcome = req.type in OUTCOME_EVENTS
        if outcome:
            self.outcomes.check(req.type, req.properties)  # 422 before anything is written
        self._note_delivery(cid, req.type, ts)
        if not outcome or req.type in FEATURE_EVENTS:
            event = FeatureEvent(cid, req.type, dict(req.properties), ts or time.time())
            self.writer.ingest(event)
            if journal:
                assert self.identity is not None
                self.identity.journal(str(req.anonymous_id), event)
        if self.triggers is not None:  # every event may start or cancel a trigger's timer
            self.triggers.observe(cid, req.type, req.properties)
        if self.outcomes.handles(req.type):
            answer["rewards"] = self._outcome_rewards(str(cid), req, ts)
        self.metrics.events.labels(req.type).inc()
        return answer

    def _note_delivery(self, cid: str, event_type: str, ts: float) -> None:
        """Cancel the pending deliveries a (valid) event cancels, a purchase for example."""
        if self.delivery is not None:
            self.delivery.note_event(cid, event_type, ts or time.time())

    def _outcome_rewards(self, cid: str, req: EventRequest, ts: float) -> list[dict[str, Any]]:
        """An outcome's attributed rewards, written and counted in ``maestro_rewards``
        (``outcome_accepted``, or ``outcome_duplicate`` when not counted) like ``/reward``'s."""
        now = time.time()
        stamp = ts if req.timestamp is not None else None
        written = self.outcomes.record(cid, req.type, req.properties, ts or now, now, stamp)
        for w in written:
            self.metrics.rewards.labels(
                "outcome_accepted" if w["counted"] else "outcome_duplicate"
            ).inc()
            if w["counted"]:
                self.metrics.reward_sum.inc(w["reward"])
        return written

    def activate(self, event_id: str) -> dict[str, Any]:
        """``POST /decisions/{event_id}/activate``: the journey engine sent this decision."""
        if self.contacts is None:
            raise UnknownEventError(f"event id {event_id!r}: this service keeps no contacts")
        return self.contacts.activate(event_id, time.time())

    def budgets(self) -> dict[str, Any]:
        """``GET /budgets``: each budgeted action's budget, used and remaining units."""
        return {"budgets": [] if self.contacts is None else self.contacts.budgets(time.time())}

    def erase(self, customer_id: str) -> dict[str, Any]:
        """``DELETE /customers/{id}``: every store of this service forgets the customer."""
        table = self.experiments.table if self.experiments is not None else None
        store = self.contacts.store if self.contacts is not None else None
        links = self.identity.store if self.identity is not None else None
        timers = None if self.triggers is None else self.triggers.engine.store
        erasers = live_erasers(self.writer, self.log, table, store, links, timers)
        erased = erase_with(erasers, customer_id)
        return {"customer_id": customer_id, "erased": erased}


def parse_json(body: bytes) -> Any:
    return orjson.loads(body)
