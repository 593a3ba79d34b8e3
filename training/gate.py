"""The promotion gate: promote a candidate only when it beats the champion with confidence.

Conservative policy improvement in the spirit of Thomas, Theocharous & Ghavamzadeh,
*High Confidence Policy Improvement*, ICML 2015, on the *paired* difference of
:mod:`training.paired`: the candidate passes when the lower end of the ``1 − alpha``
interval of ``V(candidate) − V(champion)``, both estimated on the same held-out events
(DR per-event terms with a reward model, SNIPS with the delta method without), lies
above ``min_lift`` (≥ 0), on at least ``min_events`` held-out events *and* at least
``min_events`` effective ones: the interval is a normal approximation of a mean of
importance-weighted terms, and with few large weights (a candidate that often picks what
the logging policy rarely explored) a handful of events decide it and it under-covers. In
the journey simulator a 0.95 interval on 540 events worth 80 effective ones promoted a
candidate whose true lift was −0.02; counting effective events (Kish's
``(Σ w)² / Σ w²``, the smaller of the two policies') blocks that.

The earlier rule — the candidate's lower bound against the champion's point estimate —
is not kept as an option: on shared events it answers the same question with the wrong
variance (it charges the candidate with noise the two estimates share, and ignores the
champion's own error when they do not share it), so it is never the better test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from training.paired import PairedEstimate


@dataclass(frozen=True)
class GateVerdict:
    """The gate's answer: whether it passed, the paired estimate it rests on, and why."""

    passed: bool
    paired: PairedEstimate
    min_lift: float
    n: int
    reasons: tuple[str, ...]

    @property
    def estimator(self) -> str:
        return self.paired.estimator

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return f"{verdict} ({self.estimator}): " + "; ".join(self.reasons)

    def metrics(self) -> dict[str, float]:
        """The verdict's finite numbers for MLflow, ``gate.<key>``."""
        p = self.paired
        values = {
            "gate.diff": p.diff,
            "gate.ci_low": p.ci_low,
            "gate.ci_high": p.ci_high,
            "gate.se": p.se,
            "gate.n": float(p.n),
            "gate.ess": p.ess,
            "gate.min_lift": self.min_lift,
            "gate.events_needed": (
                float(p.events_needed) if p.events_needed is not None else math.nan
            ),
        }
        return {k: v for k, v in values.items() if math.isfinite(v)}


def effective_needed(n: int, ess: float, min_events: int) -> int:
    """More held-out events for ``min_events`` effective ones, at today's ratio ess/n."""
    if ess >= min_events or n == 0:
        return 0
    if ess <= 0 or not math.isfinite(ess):
        return -1
    return math.ceil(n * min_events / ess) - n


def describe(p: PairedEstimate, min_lift: float) -> str:
    """``candidate − champion +0.0123 [95% CI +0.0040, +0.0206]`` and, when the interval
    does not clear ``min_lift``, how many more held-out events would make it."""
    level = round(100 * (1 - p.alpha))
    text = f"candidate − champion {p.diff:+.4f} [{level}% CI {p.ci_low:+.4f}, {p.ci_high:+.4f}]"
    if not math.isfinite(p.diff):
        return text + " (not estimable: the policies give no logged action any probability)"
    if p.events_needed is None:
        return text + f" (the point estimate does not exceed {min_lift:+.4f}: more events won't do)"
    if p.events_needed > 0:
        return (
            text + f" (≈{p.events_needed} more held-out events would clear {min_lift:+.4f}"
            " if the estimate holds)"
        )
    return text


def gate(
    paired: PairedEstimate,
    n: int,
    min_events: int,
    champion_is_logging: bool,
    min_lift: float = 0.0,
) -> GateVerdict:
    """Apply the promotion rule (module docstring) to the paired estimate on ``n`` events."""
    reasons = []
    ess = paired.ess if math.isfinite(paired.ess) else float(n)
    passed = n >= min_events and ess >= min_events
    few = "only " if not passed else ""
    counted = f"{few}{n} held-out events worth {ess:.0f} effective (minimum {min_events})"
    more = effective_needed(n, ess, min_events)
    if more > 0:
        counted += f" (≈{more} more held-out events for {min_events} effective)"
    reasons.append(counted)
    clears = math.isfinite(paired.ci_low) and paired.ci_low > min_lift
    passed = passed and clears
    relation = ">" if clears else "≤"
    reasons.append(
        describe(paired, min_lift) + f"; lower end {relation} minimum lift {min_lift:+.4f}"
    )
    if champion_is_logging:
        reasons.append("no registered champion: compared with the logging policy")
    return GateVerdict(passed, paired, min_lift, n, tuple(reasons))
