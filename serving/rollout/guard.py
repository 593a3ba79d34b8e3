"""The guardrails of one rollout step: the treatment arm (a canary, or a newly promoted
champion) against its baseline (the champion, or the previous champion), each guardrail
an always-valid mSPRT (:class:`training.sequential.MSPRT`) so the service may test after
every decision.

Three guardrails, each at ``alpha / 3`` so that all three together falsely roll back an
equal treatment with probability at most ``alpha``:

- ``reward`` — reward per decision (lower is harmful): a decision's observation is its
  first reward, or the decision point's default reward once its window has closed
  unrewarded;
- ``degraded`` — the share of degraded answers (higher is harmful);
- ``latency_p99`` — the share of decisions slower than the baseline's p99 (higher is
  harmful): the threshold is the baseline's 99th percentile over its first
  ``latency_sample`` decisions, then frozen, so both arms are compared against the same
  line (under equal latency both exceed it equally often).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from serving.rollout.pending import PendingRewards
from training.sequential import BASELINE, MSPRT, TREATMENT

GUARDRAILS = ("reward", "degraded", "latency_p99")


@dataclass(frozen=True)
class GuardConfig:
    """``tau`` per guardrail is the mixture's standard deviation: the size of effect the
    test is tuned to catch quickly (a reward drop of 0.1, 5 points more degraded or slow
    answers)."""

    alpha: float = 0.05
    min_n: int = 100
    reward_tau: float = 0.1
    rate_tau: float = 0.05
    latency_sample: int = 200
    max_decisions: int = 20_000

    def tests(self) -> dict[str, MSPRT]:
        a = self.alpha / len(GUARDRAILS)
        return {
            "reward": MSPRT(a, self.reward_tau, "lower", self.min_n),
            "degraded": MSPRT(a, self.rate_tau, "higher", self.min_n),
            "latency_p99": MSPRT(a, self.rate_tau, "higher", self.min_n),
        }


@dataclass
class Guard:
    """The guardrail tests of one rollout step and the decisions awaiting their reward.

    ``treatment``/``baseline`` name the variants logged for the two arms."""

    treatment: str
    baseline: str
    default_reward: float
    window_seconds: float
    config: GuardConfig = field(default_factory=GuardConfig)
    tests: dict[str, MSPRT] = field(init=False)
    decisions: int = 0
    _latencies: list[float] = field(default_factory=list)
    _threshold: float | None = None
    _pending: PendingRewards[str] = field(default_factory=PendingRewards)
    _early: deque[tuple[str, float]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.tests = self.config.tests()

    def arm_of(self, variant: str) -> str | None:
        if variant == self.treatment:
            return TREATMENT
        if variant == self.baseline:
            return BASELINE
        return None

    def decided(
        self, variant: str, event_id: str, degraded: bool, seconds: float, now: float
    ) -> None:
        """One decision of either arm (others are ignored)."""
        arm = self.arm_of(variant)
        if arm is None:
            return
        self.decisions += 1
        self.tests["degraded"].observe(arm, float(degraded))
        self._latency(arm, seconds)
        for old in self._pending.add(event_id, arm, now + self.window_seconds):
            self.tests["reward"].observe(old, self.default_reward)
        self.expire(now)

    def _latency(self, arm: str, seconds: float) -> None:
        if self._threshold is None:
            self._early.append((arm, seconds))
            if arm == BASELINE:
                self._latencies.append(seconds)
            if len(self._latencies) >= self.config.latency_sample:
                self._threshold = float(np.quantile(self._latencies, 0.99))
                while self._early:  # the early decisions, against the frozen line
                    a, s = self._early.popleft()
                    self.tests["latency_p99"].observe(a, float(s > self._threshold))
            return
        self.tests["latency_p99"].observe(arm, float(seconds > self._threshold))

    def rewarded(self, event_id: str, reward: float) -> bool:
        """The first reward of a watched decision; False when not one of ours."""
        arm = self._pending.pop(event_id)
        if arm is None or not math.isfinite(reward):
            return False
        self.tests["reward"].observe(arm, reward)
        return True

    def expire(self, now: float) -> None:
        """Decisions whose reward window closed unrewarded count the default reward
        (the windows close in decision order: the oldest are first)."""
        for arm in self._pending.expire(now):
            self.tests["reward"].observe(arm, self.default_reward)

    def rejected(self) -> tuple[str, MSPRT] | None:
        """The first guardrail whose test rejected, with its test, or None."""
        for name, test in self.tests.items():
            if test.rejected_at is not None:
                return name, test
        return None

    def passed(self) -> bool:
        """Watched long enough with no rejection: the step may end."""
        return self.decisions >= self.config.max_decisions and self.rejected() is None

    def status(self) -> dict[str, object]:
        return {
            "treatment": self.treatment,
            "baseline": self.baseline,
            "decisions": self.decisions,
            "pending_rewards": len(self._pending),
            "latency_threshold_seconds": self._threshold,
            "guardrails": {
                name: {
                    "log_lr": round(t.log_lr(), 4),
                    "threshold": round(t.threshold, 4),
                    "difference": t.difference,
                    "n": [t.baseline.n, t.treatment.n],
                    "rejected": t.rejected_at is not None,
                }
                for name, t in self.tests.items()
            },
        }
