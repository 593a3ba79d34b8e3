"""One decision point's drift detectors: ADWIN on reward residuals, PSI on features.

The residual of a joined reward is the reward minus the predicted reward of the chosen
action. ``cb_explore_adf`` answers with a pmf only (VW keeps its cost estimates inside
the reduction), so the prediction is the same for every policy kind: the chosen action's
mean reward over the *reference window*, the first ``reference`` rewards joined after the
champion started serving (an action unseen there is predicted by the window's overall
mean). Residuals then centre on zero while the world stays as it was when the champion
was trained, and their mean moves when the action's value does — for example when
preferences flip — whatever mix of actions the policy draws.

Features: the numeric customer features of the first ``window`` decisions fix each
feature's PSI bins (:mod:`training.drift.psi`); every later ``window`` decisions are
compared with them, and a PSI above ``psi_threshold`` on any feature is an alarm (once:
the next alarm needs a window back under the threshold first).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from training.drift.adwin import Adwin
from training.drift.psi import Bins, fit_bins, worst_psi
from training.errors import EstimatorInputError

RESIDUAL = "residual"
FEATURES = "features"
ONLINE_BOUND = "online_bound"
DETECTORS = (RESIDUAL, FEATURES, ONLINE_BOUND)


@dataclass(frozen=True, slots=True)
class Alarm:
    """One detector's alarm at one decision point; ``value``: the residual window's new
    mean (``residual``), the worst PSI (``features``) or the updates made (``online_bound``)."""

    decision_point: str
    detector: str
    value: float
    timestamp: float
    detail: str = ""


@dataclass
class ResidualBaseline:
    """Per-action mean reward over the first ``reference`` rewards (the prediction)."""

    reference: int = 200
    _sums: dict[str, float] = field(default_factory=dict, init=False)
    _counts: dict[str, int] = field(default_factory=dict, init=False)
    _n: int = field(default=0, init=False)
    _total: float = field(default=0.0, init=False)

    @property
    def ready(self) -> bool:
        return self._n >= self.reference

    def predicted(self, action_id: str) -> float:
        count = self._counts.get(action_id, 0)
        if count:
            return self._sums[action_id] / count
        return self._total / self._n if self._n else 0.0

    def residual(self, action_id: str, reward: float) -> float | None:
        """``reward − predicted(action_id)`` once the reference is full, else None (the
        reward joins the reference)."""
        if self.ready:
            return reward - self.predicted(action_id)
        self._sums[action_id] = self._sums.get(action_id, 0.0) + reward
        self._counts[action_id] = self._counts.get(action_id, 0) + 1
        self._n += 1
        self._total += reward
        return None


@dataclass
class PointDrift:
    """The detectors of one decision point (see the module docstring)."""

    decision_point: str
    delta: float = 0.002
    reference: int = 200
    window: int = 500
    psi_threshold: float = 0.25
    baseline: ResidualBaseline = field(init=False)
    adwin: Adwin = field(init=False)
    bins: dict[str, Bins] | None = field(default=None, init=False)
    psi: float = field(default=0.0, init=False)
    _psi_high: bool = field(default=False, init=False)
    _columns: dict[str, list[float]] = field(default_factory=dict, init=False)
    _rows: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.reference < 1 or self.window < 10:
            raise EstimatorInputError("reference must be >= 1 and window >= 10")
        if not self.psi_threshold > 0:
            raise EstimatorInputError("psi_threshold must be > 0", field="psi_threshold")
        self.baseline = ResidualBaseline(self.reference)
        self.adwin = Adwin(self.delta)

    def reward(self, action_id: str, reward: float, now: float | None = None) -> Alarm | None:
        """Feed one joined reward; an alarm when ADWIN's window shrinks."""
        residual = self.baseline.residual(action_id, reward)
        if residual is None or not self.adwin.update(residual):
            return None
        return Alarm(
            self.decision_point, RESIDUAL, self.adwin.mean, time.time() if now is None else now,
            f"residual mean {self.adwin.mean:+.4g} over the last {self.adwin.width} rewards",
        )

    def features(self, values: Mapping[str, float], now: float | None = None) -> Alarm | None:
        """Feed one decision's numeric features; an alarm when a full window's worst PSI
        exceeds the threshold."""
        for name, value in values.items():
            self._columns.setdefault(name, []).append(value)
        self._rows += 1
        if self._rows < self.window:
            return None
        columns, self._columns, self._rows = self._columns, {}, 0
        if self.bins is None:
            self.bins = fit_bins(columns)
            return None
        name, self.psi = worst_psi(self.bins, columns)
        was_high, self._psi_high = self._psi_high, self.psi > self.psi_threshold
        if not self._psi_high or was_high:
            return None
        return Alarm(
            self.decision_point, FEATURES, self.psi, time.time() if now is None else now,
            f"PSI {self.psi:.3f} on {name}",
        )
