"""Drift watch and online learning of the served policies, fed by decisions and rewards.

Each decision a champion answers (not degraded, not an experiment's other arm) is
remembered by event id in a bounded table (its decision point, the chosen action, and —
with online learning — the context, eligible actions and logged probability). A reward
accepted by this replica for a remembered event joins it:

- the decision point's residual detector (:class:`training.drift.detectors.PointDrift`)
  gets ``reward − predicted reward of the chosen action``; the numeric customer features
  of every ``FEATURE_SAMPLE``-th decision feed its PSI detector (a sample keeps the
  decide path's cost down; the bins and shares are those of the sample);
- an alarm counts in ``maestro_drift_alarms_total{decision_point,detector}``, sets the
  gauge ``maestro_drift_alarm{decision_point,detector}`` to 1 until a new champion is
  swapped in, goes to the dashboard, and is appended to the workspace's alarm file
  (:mod:`training.drift.alarms`), which ``maestro train --every`` reads to retrain early;
- with online learning (``MAESTRO_ONLINE_LEARNING``, off by default) a ``vw-cb``
  champion learns the joined reward on the logged action with its logged probability
  (``VWPolicy.learn``): the served model changes between training runs. Each decision
  logs how many updates its model had (``learned_since``). After ``online_max_updates``
  updates the replica stops learning and raises an ``online_bound`` alarm: the drifted
  model is not what the gate approved, and asks for a re-gate (a retrain by ``--every``).

A reward that reaches a replica other than the one that decided is not joined here (the
table is in memory); training joins every reward from the logs. The monitor's state is
changed under its ``lock``; with online learning the service also holds it while the
policy decides (decisions may run in a thread pool), so VW never learns and predicts at
once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from policies.types import Action, Context, LoggedBatch
from serving.service.metrics import Metrics
from serving.service.policy_store import LoadedPolicy
from training.drift.alarms import append_alarm
from training.drift.detectors import DETECTORS, ONLINE_BOUND, Alarm, PointDrift

logger = logging.getLogger(__name__)

#: one decision in this many feeds the feature detector
FEATURE_SAMPLE = 8


@dataclass(frozen=True, slots=True)
class DriftOptions:
    """``delta``: ADWIN's confidence; ``reference``: rewards forming the residual
    baseline; ``window``: decisions per PSI window; ``online``: learn between runs;
    ``max_updates``: online updates before re-gating; ``pending``: decisions remembered
    (a few hundred bytes each); ``learnable``: of those, the latest whose context and
    actions are kept for online learning (a few KB each: 10,000 ≈ 50 MB)."""

    delta: float = 0.002
    reference: int = 200
    window: int = 500
    psi_threshold: float = 0.25
    online: bool = False
    max_updates: int = 5_000
    pending: int = 100_000
    learnable: int = 10_000


@dataclass(slots=True)
class _Pending:
    point: str
    action_id: str
    version: str


@dataclass(slots=True)
class _Learnable:
    """What VW needs to learn from one decision."""

    context: Context
    actions: list[Action]
    index: int
    probability: float


def numeric_features(context: Context) -> dict[str, float]:
    """The customer's numeric (not boolean) features, the PSI detector's input."""
    return {
        k: float(v) for k, v in context.customer.items()
        if v.__class__ is float or v.__class__ is int
    }  # fmt: skip


class DriftMonitor:
    """Per decision point detectors and the online learner (see the module docstring)."""

    def __init__(
        self,
        metrics: Metrics,
        options: DriftOptions | None = None,
        alarm_file: Path | None = None,
        replica: str = "",
        on_alarm: Callable[[Alarm], None] | None = None,
    ) -> None:
        self.metrics = metrics
        self.options = options or DriftOptions()
        self.alarm_file = alarm_file
        self.replica = replica
        self.on_alarm = on_alarm
        self._points: dict[str, PointDrift] = {}
        self._sampled = 0
        self._joined: dict[str, Any] = {}  # metric children (prometheus' labels() ~5 µs)
        self._pending: OrderedDict[str, _Pending] = OrderedDict()
        self._learnable: OrderedDict[str, _Learnable] = OrderedDict()
        #: online updates of the serving model, per decision point
        self.learned: dict[str, int] = {}
        self._stopped: set[str] = set()
        self.recent: list[dict[str, Any]] = []  # the dashboard's latest alarms
        self.lock = threading.Lock()

    def _point(self, name: str) -> PointDrift:
        point = self._points.get(name)
        if point is None:
            o = self.options
            point = self._points[name] = PointDrift(
                name, o.delta, o.reference, o.window, o.psi_threshold
            )
            for detector in DETECTORS:
                self.metrics.drift_alarm.labels(name, detector).set(0)
        return point

    def reset(self, name: str) -> None:
        """A new champion: fresh detectors and baseline, no online updates yet."""
        self._points.pop(name, None)
        self.learned[name] = 0
        self._stopped.discard(name)
        self._point(name)
        self.metrics.online_learned.labels(name).set(0)

    def learned_since(self, name: str) -> int | None:
        """Online updates of ``name``'s serving model (None without online learning)."""
        return self.learned.get(name, 0) if self.options.online else None

    def decided(
        self, event_id: str, loaded: LoadedPolicy, context: Context, actions: list[Action],
        action: Action, probability: float,
    ) -> None:  # fmt: skip
        """Remember one champion decision for its reward, and feed the feature detector."""
        with self.lock:
            self._decided(event_id, loaded, context, actions, action, probability)

    def _decided(
        self, event_id: str, loaded: LoadedPolicy, context: Context, actions: list[Action],
        action: Action, probability: float,
    ) -> None:  # fmt: skip
        point = context.decision_point
        pending = self._pending
        pending[event_id] = _Pending(point, action.id, loaded.version)
        if len(pending) > self.options.pending:
            pending.popitem(last=False)
        if self.options.online and loaded.policy.kind == "vw-cb":
            index = next(i for i, a in enumerate(actions) if a.id == action.id)
            kept = self._learnable
            kept[event_id] = _Learnable(context, list(actions), index, probability)
            if len(kept) > self.options.learnable:
                kept.popitem(last=False)
        self._sampled += 1
        if self._sampled % FEATURE_SAMPLE:
            return
        detector = self._point(point)
        psi = detector.psi
        alarm = detector.features(numeric_features(context))
        if alarm is not None:
            self._raise(alarm)
        if detector.psi != psi:  # a window was just compared
            self.metrics.drift_psi.labels(point).set(detector.psi)

    def rewarded(
        self, event_id: str, reward: float, serving: Callable[[str], LoadedPolicy]
    ) -> bool:
        """Join an accepted reward to its remembered decision (``serving``: the policy
        now serving a decision point); True when it was joined."""
        with self.lock:
            return self._rewarded(event_id, reward, serving)

    def _rewarded(
        self, event_id: str, reward: float, serving: Callable[[str], LoadedPolicy]
    ) -> bool:
        pending = self._pending.pop(event_id, None)
        if pending is None:
            return False
        point = pending.point
        joined = self._joined.get(point)
        if joined is None:
            joined = self._joined[point] = self.metrics.drift_joined.labels(point)
        joined.inc()
        alarm = self._point(point).reward(pending.action_id, reward)
        if alarm is not None:
            self._raise(alarm)
        kept = self._learnable.pop(event_id, None)
        if kept is not None:
            self._learn(pending, kept, reward, serving(point))
        return True

    def _learn(
        self, pending: _Pending, kept: _Learnable, reward: float, serving: LoadedPolicy
    ) -> None:
        point = pending.point
        if serving.version != pending.version or point in self._stopped:
            return  # decided by a model since replaced, or learning stopped for re-gating
        serving.policy.learn(LoggedBatch(
            [kept.context], [kept.actions], np.array([kept.index]),
            np.array([kept.probability]), np.array([reward]),
        ))  # fmt: skip
        done = self.learned[point] = self.learned.get(point, 0) + 1
        self.metrics.online_updates.labels(point).inc()
        self.metrics.online_learned.labels(point).set(done)
        if done >= self.options.max_updates:
            self._stopped.add(point)
            detail = f"{done} online updates since v{serving.version}: re-gate"
            self._raise(Alarm(point, ONLINE_BOUND, float(done), time.time(), detail))

    def _raise(self, alarm: Alarm) -> None:
        self.metrics.drift_alarms.labels(alarm.decision_point, alarm.detector).inc()
        self.metrics.drift_alarm.labels(alarm.decision_point, alarm.detector).set(1)
        logger.warning("drift: %s %s: %s", alarm.decision_point, alarm.detector, alarm.detail)
        self.recent = [*self.recent[-19:], {
            "decision_point": alarm.decision_point, "detector": alarm.detector,
            "value": alarm.value, "timestamp": alarm.timestamp, "detail": alarm.detail,
        }]  # fmt: skip
        if self.alarm_file is not None:
            try:
                append_alarm(self.alarm_file, alarm, self.replica)
            except OSError as exc:  # the alarm still shows in /metrics and the dashboard
                logger.error("drift: cannot append to %s: %s", self.alarm_file, exc)
        if self.on_alarm is not None:
            self.on_alarm(alarm)

    def snapshot(self) -> dict[str, Any]:
        """The dashboard's view: per decision point, residual window and PSI; recent alarms."""
        points = [{
            "decision_point": name, "residual_mean": p.adwin.mean, "residual_window": p.adwin.width,
            "reference_full": p.baseline.ready, "psi": p.psi, "alarms": p.adwin.detections,
            "learned_since": self.learned.get(name, 0) if self.options.online else None,
        } for name, p in sorted(self._points.items())]  # fmt: skip
        return {"points": points, "alarms": list(self.recent)}
