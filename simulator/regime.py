"""A regime change in the simulator: preferences flip at a given step, and a runner that
watches the change with the served drift detectors while a policy learns online or not.

:class:`PreferenceFlip` wraps any :class:`~simulator.records.Environment`. Until step
``at_step`` it is the wrapped world. From then on every customer's preferences among the
eligible actions are reversed: the action with the ``k``-th highest true expected reward
now earns what the ``k``-th lowest did (best ↔ worst, second ↔ second-worst, …). The
wrapper plays the mirrored action in the wrapped world and reports the chosen action with
the mirrored truths, so regret stays exact. What a policy learnt before the flip now
points it at the worst actions.

:func:`run_drift_trial` runs a policy through such a world, feeding every realised reward
to one :class:`training.drift.detectors.PointDrift` per decision point (the detectors the
server runs) from step ``watch_from`` on (the detectors start with a trained champion,
as on a server after a promotion), and learning every ``learn_every`` steps while
``learn(t)`` says so. It returns per-step regret and the steps at which a residual alarm
fired.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from policies.base import BasePolicy
from policies.draw import decide_among, seed_from_event_id
from policies.types import Decision, LoggedBatch
from simulator.errors import InvalidSimulationConfig
from simulator.records import Environment, Observation, StepResult
from training.drift.detectors import PointDrift


class PreferenceFlip:
    """``env`` whose customers' preferences flip at ``at_step`` (None: never)."""

    def __init__(self, env: Environment, at_step: int | None) -> None:
        if at_step is not None and at_step < 0:
            raise InvalidSimulationConfig("at_step must be >= 0", field="at_step")
        self.env = env
        self.catalog = env.catalog
        self.at_step = at_step
        self.t = 0

    @property
    def flipped(self) -> bool:
        return self.at_step is not None and self.t >= self.at_step

    def reset(self, seed: int | None = None) -> Observation:
        self.t = 0
        return self.env.reset(seed=seed)

    def _mirror(self, obs: Observation, truth: np.ndarray) -> dict[int, int]:
        """Candidate position → the position whose value it takes after the flip."""
        eligible = [int(i) for i in obs.eligible_index]
        ranked = sorted(eligible, key=lambda i: (-truth[i], i))
        return dict(zip(ranked, reversed(ranked), strict=True))

    def expected_rewards(self) -> np.ndarray:
        truth = self.env.expected_rewards()
        if not self.flipped:
            return truth
        out = truth.copy()
        for i, j in self._mirror(self._observation(), truth).items():
            out[i] = truth[j]
        return out

    def _observation(self) -> Observation:
        return self.env.observation  # type: ignore[attr-defined, no-any-return]

    def step(self, decision: Decision) -> StepResult:
        if not self.flipped or decision.action is None:
            self.t += 1
            return self.env.step(decision)
        obs = self._observation()
        truth = self.env.expected_rewards()
        mirror = self._mirror(obs, truth)
        chosen = next(i for i, a in enumerate(obs.candidates) if a.id == decision.action.id)
        played = obs.candidates[mirror.get(chosen, chosen)]
        result = self.env.step(dataclasses.replace(decision, action=played))
        self.t += 1
        flipped = truth.copy()
        for i, j in mirror.items():
            flipped[i] = truth[j]
        best = max(mirror, key=lambda i: (flipped[i], -i))
        return dataclasses.replace(
            result, action=decision.action, chosen=chosen, expected_rewards=flipped,
            optimal_value=float(flipped[best]), optimal_action=obs.candidates[best].id,
        )  # fmt: skip


@dataclass
class DriftTrial:
    """One run: ``regret`` per step, shape ``(steps,)``; ``alarms``: steps at which a
    residual alarm fired (any decision point); ``change_at``: the flip's step or None."""

    regret: np.ndarray
    alarms: list[int] = field(default_factory=list)
    change_at: int | None = None
    watch_from: int = 0

    @property
    def false_alarms(self) -> int:
        """Alarms before the change (every alarm when there is none)."""
        end = len(self.regret) if self.change_at is None else self.change_at
        return sum(1 for a in self.alarms if a < end)

    @property
    def watched(self) -> int:
        """Steps watched without a change (where every alarm is a false one)."""
        end = len(self.regret) if self.change_at is None else self.change_at
        return max(0, end - self.watch_from)

    @property
    def delay(self) -> int | None:
        """Steps from the change to the first alarm at or after it (None: none fired)."""
        if self.change_at is None:
            return None
        after = [a - self.change_at for a in self.alarms if a >= self.change_at]
        return after[0] if after else None

    def recovery(self, window: int = 1000, tolerance: float = 0.10) -> int | None:
        """Steps after the change until the mean regret of the last ``window`` steps is
        back within ``tolerance`` of the ``window`` steps before the change (None: never)."""
        if self.change_at is None or self.change_at < window:
            return None
        before = float(self.regret[self.change_at - window : self.change_at].mean())
        csum = np.concatenate([[0.0], np.cumsum(self.regret)])
        for end in range(self.change_at + window, len(self.regret) + 1, window // 10 or 1):
            if (csum[end] - csum[end - window]) / window <= before * (1.0 + tolerance):
                return end - self.change_at
        return None


def run_drift_trial(
    policy: BasePolicy,
    env: PreferenceFlip,
    steps: int,
    seed: int = 0,
    learn: Callable[[int], bool] = lambda t: True,
    learn_every: int = 32,
    delta: float = 0.002,
    reference: int = 250,
    watch_from: int = 0,
) -> DriftTrial:
    """Run ``policy`` for ``steps`` in ``env`` (see the module docstring)."""
    if steps < 1 or learn_every < 1:
        raise InvalidSimulationConfig("steps and learn_every must be >= 1")
    obs = env.reset(seed=seed)
    detectors: dict[str, PointDrift] = {}
    regret = np.empty(steps)
    alarms: list[int] = []
    pending: list[tuple[Any, ...]] = []
    for t in range(steps):
        event_id = f"drift-{seed}-{t}"
        ctx = obs.context
        decision = decide_among(
            policy, ctx, obs.eligible, obs.excluded, seed_from_event_id(event_id), event_id
        )
        result = env.step(decision)
        regret[t] = result.regret
        if t >= watch_from:
            point = detectors.get(ctx.decision_point)
            if point is None:
                point = detectors[ctx.decision_point] = PointDrift(
                    ctx.decision_point, delta=delta, reference=reference
                )
            if point.reward(result.action.id, result.reward, now=float(t)) is not None:
                alarms.append(t)
        if learn(t):
            index = next(i for i, a in enumerate(obs.eligible) if a.id == result.action.id)
            pending.append((ctx, obs.eligible, index, decision.probability, result.reward))
        if pending and (len(pending) >= learn_every or not learn(t)):
            ctxs, acts, idx, probs, rewards = zip(*pending, strict=True)
            policy.learn(LoggedBatch(list(ctxs), list(acts), np.array(idx), np.array(probs),
                                     np.array(rewards)))  # fmt: skip
            pending = []
        obs = result.next_observation
    return DriftTrial(regret, alarms, env.at_step, watch_from)
