"""Continuous off-policy evaluation of a shadow policy from the rows it is logged on.

Each decision served beside a shadow logs the shadow's probability of the *logged*
action (``shadow_logged_probability``) next to the probability it was drawn with; their
ratio ``w`` is the importance weight of the shadow on that row. As each decision's
reward resolves (its first reward, or the decision point's default once the window
closes), the running sums give::

    served value  V_served = Σ r / n           (on-policy, the policy that answered)
    IPS           V_shadow = Σ w r / n
    SNIPS         V_shadow = Σ w r / Σ w
    effective sample size   (Σ w)² / Σ w²

the same estimators :mod:`training.ope` runs offline (Horvitz & Thompson 1952;
Swaminathan & Joachims 2015 for the self-normalised form), updated per reward so that
``GET /stages`` shows them live. The offline ``maestro evaluate`` on the same logs gives
the intervals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from serving.rollout.pending import PendingRewards


@dataclass
class ShadowEval:
    """The running estimates of one shadow version at one decision point."""

    version: str
    default_reward: float
    window_seconds: float
    n: int = 0
    sum_r: float = 0.0
    sum_w: float = 0.0
    sum_w2: float = 0.0
    sum_wr: float = 0.0
    _pending: PendingRewards[float] = field(default_factory=PendingRewards)

    def decided(self, event_id: str, weight: float, now: float) -> None:
        """A decision logged with the shadow beside it, ``weight`` = shadow / logged
        probability of the logged action."""
        for w in self._pending.add(event_id, weight, now + self.window_seconds):
            self._resolve(w, self.default_reward)
        for w in self._pending.expire(now):
            self._resolve(w, self.default_reward)

    def rewarded(self, event_id: str, reward: float) -> bool:
        w = self._pending.pop(event_id)
        if w is None or not math.isfinite(reward):
            return False
        self._resolve(w, reward)
        return True

    def _resolve(self, w: float, r: float) -> None:
        self.n += 1
        self.sum_r += r
        self.sum_w += w
        self.sum_w2 += w * w
        self.sum_wr += w * r

    def estimates(self) -> dict[str, float | int | str | None]:
        n = self.n
        return {
            "version": self.version,
            "resolved": n,
            "pending": len(self._pending),
            "served_value": self.sum_r / n if n else None,
            "shadow_ips": self.sum_wr / n if n else None,
            "shadow_snips": self.sum_wr / self.sum_w if self.sum_w > 0 else None,
            "effective_sample_size": self.sum_w**2 / self.sum_w2 if self.sum_w2 > 0 else None,
        }
