"""Staged rollout in service: the stage policies of each decision point, the canary (or
previous champion) share, the guardrails, and the automatic rollback.

The stages live in the MLflow registry as aliases (:mod:`training.stages`); a background
thread reads them every ``poll_seconds`` and, when a decision point's stages changed,
loads its step:

- ``shadow``: the shadow policy decides beside whatever answers; its choice, its
  probability of that choice and its probability of the logged action are logged
  (``shadow_*`` columns) and evaluated off-policy as rewards arrive
  (:class:`serving.rollout.shadow.ShadowEval`);
- ``canary``: a customer whose hash ``unit_hash(salt, "rollout:<dp>:<version>", id)``
  (the experiments' hash, :func:`serving.experiments.variants.unit_hash`) falls below
  the share is served by the canary (variant ``canary``), the rest by the champion
  (variant ``champion``) — sticky for as long as the step lasts, and the logged
  probabilities are the serving policy's own;
- ``watch``: after a staged promotion, the previous champion keeps the share (variant
  ``previous_champion``) as the baseline the new champion is compared with.

Customers an experiment assigns to anything but ``champion`` (holdout, rules, a
challenger) stay where the experiment put them. The guardrails
(:class:`serving.rollout.guard.Guard`) see every decision of both arms and every first
reward; when one rejects, the step stops splitting at once (a rejected canary's share
goes back to the champion; a rejected champion's traffic all goes to the previous one),
and the poll thread moves the alias back and records the evidence in MLflow
(:func:`training.stages.roll_back`). A watched champion that passes ``max_decisions``
decisions ends its watch. Each replica guards its own traffic (and rewards posted to
it); the first to reject rolls back for all.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from policies.catalog import Catalog
from serving.experiments.variants import CHAMPION, Arm, unit_hash
from serving.rollout.guard import Guard, GuardConfig
from serving.rollout.shadow import ShadowEval
from serving.service.policy_store import LoadedPolicy, PolicyStore, load_registered
from training import stages
from training.stages import StageState

logger = logging.getLogger(__name__)
CANARY = "canary"
PREVIOUS = "previous_champion"
_CHAMPION_ARM = Arm(CHAMPION, None)


@dataclass
class Step:
    """What one decision point serves beside its champion now."""

    state: StageState
    shadow: LoadedPolicy | None = None
    shadow_eval: ShadowEval | None = None
    minor: Arm | None = None  # the arm of the share: the canary or the previous champion
    guard: Guard | None = None
    scope: str = ""
    rejected: bool = False
    rollback: dict[str, Any] | None = None

    def arm(self, customer_id: str, salt: str) -> Arm | None:
        """This step's arm for the customer (None: no split in flight)."""
        minor = self.minor
        if minor is None:
            return None
        if self.rejected:  # everyone to the arm that is not under suspicion
            return _CHAMPION_ARM if minor.name == CANARY else minor
        if unit_hash(salt, self.scope, customer_id) < self.state.share:
            return minor
        return _CHAMPION_ARM


class Rollout:
    """The rollout steps of every decision point (see the module doc)."""

    def __init__(
        self,
        catalog: Catalog,
        tracking_uri: str,
        policies: PolicyStore,
        *,
        poll_seconds: float = 5.0,
        config: GuardConfig | None = None,
        salt: str = "maestro-rollout",
    ) -> None:
        self.catalog = catalog
        self.tracking_uri = tracking_uri
        self.policies = policies
        self.poll_seconds = poll_seconds
        self.config = config or GuardConfig()
        self.salt = salt
        self.steps: dict[str, Step] = {}
        self.rollbacks: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Rollout:
        self.refresh()
        self._thread = threading.Thread(target=self._poll, daemon=True, name="rollout-poll")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.refresh()
            except Exception as exc:  # registry unreachable: keep serving, retry later
                logger.warning("rollout: cannot poll the registry: %s", exc)

    def refresh(self) -> None:
        """Act on rejected or finished guards, then reload every changed step."""
        for dp, step in list(self.steps.items()):
            self._act(dp, step)
        for dp in self.catalog.names():
            state = stages.read_state(dp, self.tracking_uri)
            current = self.steps.get(dp)
            if current is None or current.state != state:
                self.steps[dp] = self._build(dp, state)

    # ------------------------------------------------------------------ steps
    def _load(self, dp: str, version: str, source: str) -> LoadedPolicy:
        policy = load_registered(self.catalog, dp, version, self.tracking_uri)
        return LoadedPolicy(policy, version, source)

    def _build(self, dp: str, state: StageState) -> Step:
        point = self.catalog[dp]
        step = Step(state)
        try:
            if state.shadow is not None and state.shadow != state.champion:
                step.shadow = self._load(dp, state.shadow, stages.SHADOW)
                step.shadow_eval = ShadowEval(
                    state.shadow, point.default_reward, point.reward_window_seconds
                )
            if state.stage == CANARY:
                assert state.canary is not None
                step.minor = Arm(CANARY, self._load(dp, state.canary, CANARY))
                treatment, baseline, scope_version = CANARY, CHAMPION, state.canary
            elif state.stage == "watch":
                assert state.previous is not None
                step.minor = Arm(PREVIOUS, self._load(dp, state.previous, PREVIOUS))
                treatment, baseline, scope_version = CHAMPION, PREVIOUS, str(state.champion)
        except Exception as exc:  # a broken artefact: no step, the champion serves all
            logger.error("rollout: %s: cannot load its stages %s: %s", dp, state, exc)
            return Step(state)
        if step.minor is not None:
            step.scope = f"rollout:{dp}:{scope_version}"
            step.guard = Guard(
                treatment, baseline, point.default_reward, point.reward_window_seconds,
                self.config,
            )
        return step

    def _act(self, dp: str, step: Step) -> None:
        guard = step.guard
        if guard is None or step.rollback is not None:
            return
        with self._lock:
            found = guard.rejected()
            passed = guard.passed()
        if found is not None:
            name, test = found
            evidence = {"guardrail": name, "decisions": guard.decisions, **test.evidence()}
            step.rollback = stages.roll_back(dp, step.state, evidence, self.tracking_uri)
            self.rollbacks.append(step.rollback)
            logger.warning("rollout: %s rolled back: %s", dp, step.rollback)
            self.policies.refresh_one(dp)
        elif passed and step.state.stage == "watch":
            stages.end_watch(dp, self.tracking_uri)

    # ------------------------------------------------------------------ the decide path
    def shadow(self, decision_point: str) -> LoadedPolicy | None:
        step = self.steps.get(decision_point)
        return None if step is None else step.shadow

    def arm(self, experiment_arm: Any, customer_id: str, decision_point: str) -> Any:
        """The arm a customer is served by: the experiment's, unless it is the champion
        and a rollout step splits the decision point."""
        if experiment_arm is not None and experiment_arm.name != CHAMPION:
            return experiment_arm
        step = self.steps.get(decision_point)
        arm = None if step is None else step.arm(customer_id, self.salt)
        return experiment_arm if arm is None else arm

    def decided(
        self,
        decision_point: str,
        variant: str,
        event_id: str,
        degraded: bool,
        seconds: float,
        shadow_weight: float | None,
    ) -> None:
        """Observe one answered decision (its arm, degraded flag, latency, shadow weight)."""
        step = self.steps.get(decision_point)
        if step is None or (step.guard is None and step.shadow_eval is None):
            return  # nothing in flight: no lock, no clock
        now = time.time()
        with self._lock:
            if step.shadow_eval is not None and shadow_weight is not None:
                step.shadow_eval.decided(event_id, shadow_weight, now)
            guard = step.guard
            if guard is not None and not step.rejected:
                guard.decided(variant, event_id, degraded, seconds, now)
                self._check(step, guard)

    def rewarded(self, event_id: str, reward: float) -> None:
        """Observe a decision's first reward."""
        with self._lock:
            for step in self.steps.values():
                if step.shadow_eval is not None:
                    step.shadow_eval.rewarded(event_id, reward)
                guard = step.guard
                if guard is not None and not step.rejected and guard.rewarded(event_id, reward):
                    self._check(step, guard)

    def _check(self, step: Step, guard: Guard) -> None:
        """A guardrail rejected: stop the split now, wake the poll thread to roll back."""
        if guard.rejected() is not None:
            step.rejected = True
            self._wake.set()

    # ------------------------------------------------------------------ reporting
    def describe(self) -> dict[str, Any]:
        """Each decision point's stages, guardrails and shadow estimates (``GET /stages``)."""
        out: dict[str, Any] = {}
        with self._lock:
            for dp in self.catalog.names():
                step = self.steps.get(dp) or Step(StageState(dp))
                out[dp] = {
                    **step.state.as_dict(),
                    "guard": None if step.guard is None else step.guard.status(),
                    "shadow_eval": (
                        None if step.shadow_eval is None else step.shadow_eval.estimates()
                    ),
                    "rolled_back": step.rollback,
                }
        return out
