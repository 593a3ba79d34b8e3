"""Experiment lift: per-variant reward, lift over the holdout and over ``rules`` with 95%
confidence intervals, and the sample size still needed to detect a given effect.

Statistics (rewards of the decisions whose outcome is known — rewarded, or past their
reward window and given the default reward; intent to treat: every decision counts for
the variant the customer was assigned to, degraded answers included):

- mean reward of a variant with a Student-t interval ``x̄ ± t_{0.975, n-1} s/√n``;
- lift of variant A over baseline B, ``Δ = x̄_A − x̄_B``, with Welch's unequal-variance
  interval ``Δ ± t_{0.975, ν} √(s²_A/n_A + s²_B/n_B)``, ``ν`` the Welch–Satterthwaite
  degrees of freedom (B. L. Welch, "The generalization of 'Student's' problem when
  several different population variances are involved", *Biometrika* 34, 1947;
  F. E. Satterthwaite, *Biometrics Bulletin* 2, 1946); for large samples this is the
  normal approximation on the difference of means used in online experiments (Kohavi,
  Tang & Xu, *Trustworthy Online Controlled Experiments*, CUP 2020, ch. 17), and the
  two-sided p-value of the same test;
- sample size for a two-sided test at level α with power 1−β to detect an absolute
  effect δ, keeping the current allocation ratio ``k = n_A / n_B``:
  ``n_B = (z_{1−α/2} + z_{1−β})² (σ²_A / k + σ²_B) / δ²``, ``n_A = k n_B`` (Cohen,
  *Statistical Power Analysis for the Behavioral Sciences*, 2nd ed., 1988; Chow, Shao &
  Wang, *Sample Size Calculations in Clinical Research*, 2008, §3.2). δ defaults to 10%
  of the baseline's mean reward, or 0.2 pooled standard deviations (Cohen's "small"
  effect) when that mean is 0. ``remaining`` is what each arm still needs.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from policies.catalog import Catalog
from training.data import TrainingDataError, join_logs
from training.logs.dataset import LogReport, read_log
from training.logs.location import LogLocation
from training.logs.schema import (
    CONTEXT,
    COUNTED,
    CUSTOMER_FEATURES,
    DECISION_POINT,
    EVENT_ID,
    REWARD,
    SEGMENTS,
    VARIANT,
)

if TYPE_CHECKING:
    import pandas as pd

BASELINES = ("holdout", "rules")


@dataclass(frozen=True)
class Interval:
    value: float
    ci_low: float
    ci_high: float


def mean_interval(x: np.ndarray, level: float = 0.95) -> Interval | None:
    """Mean with a Student-t interval (``None`` for an empty sample; a point for n = 1)."""
    from scipy import stats  # deferred: scipy.stats is slow to import, serving imports lift

    n = len(x)
    if n == 0:
        return None
    mean = float(np.mean(x))
    if n == 1:
        return Interval(mean, mean, mean)
    half = stats.t.ppf(0.5 + level / 2, n - 1) * float(np.std(x, ddof=1)) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half)


def welch(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> dict[str, float] | None:
    """Lift ``mean(a) − mean(b)`` with Welch's interval and p-value (``None`` if n < 2)."""
    from scipy import stats  # deferred: scipy.stats is slow to import, serving imports lift

    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return None
    va, vb = float(np.var(a, ddof=1)) / na, float(np.var(b, ddof=1)) / nb
    diff = float(np.mean(a) - np.mean(b))
    se = math.sqrt(va + vb)
    base = float(np.mean(b))
    relative = diff / abs(base) if base != 0 else None
    if se == 0:
        p = 1.0 if diff == 0 else 0.0
        return {
            "diff": diff,
            "ci_low": diff,
            "ci_high": diff,
            "se": 0.0,
            "df": float(na + nb - 2),
            "p_value": p,
            "relative": relative,
        }
    df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    p = float(2 * stats.t.sf(abs(diff) / se, df))
    return {
        "diff": diff,
        "ci_low": diff - half,
        "ci_high": diff + half,
        "se": se,
        "df": df,
        "p_value": p,
        "relative": relative,
    }


def sample_size(
    var_a: float,
    var_b: float,
    mde: float,
    ratio: float = 1.0,
    alpha: float = 0.05,
    power: float = 0.8,
) -> tuple[int, int]:
    """``(n_A, n_B)`` needed to detect ``mde`` with ``n_A = ratio · n_B`` (module docstring)."""
    from scipy import stats  # deferred: scipy.stats is slow to import, serving imports lift

    if mde <= 0 or ratio <= 0:
        raise ValueError("mde and ratio must be > 0")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    n_b = z**2 * (var_a / ratio + var_b) / mde**2
    return math.ceil(ratio * n_b), math.ceil(n_b)


def default_mde(a: np.ndarray, b: np.ndarray, relative: float = 0.1) -> float:
    base = abs(float(np.mean(b))) if len(b) else 0.0
    if base > 0:
        return relative * base
    pooled = math.sqrt((float(np.var(a, ddof=1)) + float(np.var(b, ddof=1))) / 2)
    return 0.2 * pooled if pooled > 0 else 1e-9


def compare(
    a: np.ndarray,
    b: np.ndarray,
    mde: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
) -> dict[str, Any] | None:
    """Lift of ``a`` over ``b`` plus the sample size analysis."""
    out = welch(a, b, 1 - alpha)
    if out is None:
        return None
    effect = mde if mde is not None else default_mde(a, b)
    ratio = len(a) / len(b)
    var_a, var_b = float(np.var(a, ddof=1)), float(np.var(b, ddof=1))
    if var_a + var_b == 0:
        need_a, need_b = len(a), len(b)
    else:
        need_a, need_b = sample_size(var_a, var_b, effect, ratio, alpha, power)
    out["sample_size"] = {
        "mde": effect,
        "alpha": alpha,
        "power": power,
        "required": {"variant": need_a, "baseline": need_b},
        "remaining": {"variant": max(0, need_a - len(a)), "baseline": max(0, need_b - len(b))},
    }
    return out


def variant_table(
    decisions: pd.DataFrame, outcomes: pd.DataFrame, rewarded: set[str], mde: float | None = None
) -> dict[str, Any]:
    """Per decision point and variant: counts, mean reward, lifts over the baselines.

    ``decisions``: one row per logged decision (``event_id``, ``decision_point``,
    ``variant``); ``outcomes``: ``event_id``, ``reward`` for decisions with a known outcome;
    ``rewarded``: event ids that received a reward."""
    out: dict[str, Any] = {}
    if decisions.empty:
        return out
    merged = outcomes.merge(decisions[[EVENT_ID, DECISION_POINT, VARIANT]], on=EVENT_ID)
    logged = decisions.get(SEGMENTS)
    for dp in sorted(decisions[DECISION_POINT].unique()):
        in_dp = decisions[DECISION_POINT] == dp
        d = decisions[in_dp]
        m = merged[merged[DECISION_POINT] == dp]
        entry: dict[str, Any] = {"variants": _variant_rows(d, m, rewarded, mde)}
        if logged is not None:
            per = {}
            for name, members in _segment_members(logged[in_dp]).items():
                per[name] = {
                    "variants": _variant_rows(
                        d[members], m[m[EVENT_ID].isin(d.loc[members, EVENT_ID])], rewarded, mde
                    )
                }
            if per:
                entry["segments"] = per
        out[str(dp)] = entry
    return out


def _segment_members(logged: pd.Series) -> dict[str, pd.Series]:
    """Segment name → mask of the decisions logged in it (rows without the column: none)."""
    names = sorted({n for v in logged if v is not None and v == v for n in v})
    return {n: logged.map(lambda v, n=n: v is not None and v == v and n in v) for n in names}


def _variant_rows(
    d: pd.DataFrame, m: pd.DataFrame, rewarded: set[str], mde: float | None
) -> list[dict[str, Any]]:
    """One row per variant of decisions ``d`` (outcomes ``m``): counts, mean, lifts."""
    samples = {
        str(v): m.loc[m[VARIANT] == v, REWARD].to_numpy(dtype=float)
        for v in sorted(d[VARIANT].astype(str).unique())
    }
    rows = []
    for variant, x in samples.items():
        ids = d.loc[d[VARIANT] == variant, EVENT_ID]
        ci = mean_interval(x)
        row: dict[str, Any] = {
            "variant": variant,
            "decisions": len(ids),
            "rewards": int(sum(1 for e in ids if e in rewarded)),
            "matured": len(x),
            "reward_sum": float(x.sum()),
            "mean_reward": ci.value if ci else None,
            "ci_low": ci.ci_low if ci else None,
            "ci_high": ci.ci_high if ci else None,
            "lift": {},
        }
        for base in BASELINES:
            if base != variant and base in samples:
                row["lift"][base] = compare(x, samples[base], mde)
        rows.append(row)
    return rows


def experiment_report(
    logs_dir: str | os.PathLike[str] | LogLocation,
    catalog: Catalog,
    now: float | None = None,
    reward_mode: str = "first",
    mde: float | None = None,
) -> dict[str, Any]:
    """Read the decision and reward datasets of the log at ``logs_dir`` (a path or URI:
    :mod:`training.logs.location`) and compute :func:`variant_table`
    (rewards joined exactly as training joins them, :func:`training.data.join_logs`)."""
    import pandas as pd


    now = time.time() if now is None else now
    report = LogReport()
    location = LogLocation.of(logs_dir)
    decisions = read_log(location, "decisions", report)
    rewards = read_log(location, "rewards", report)
    result: dict[str, Any] = {"generated_at": now, "mde": mde, "decision_points": {}}
    if decisions.empty:
        return result
    decisions = decisions.drop_duplicates(EVENT_ID, keep="first")
    if VARIANT not in decisions:
        decisions = decisions.assign(**{VARIANT: "champion"})
    decisions = decisions.assign(**{VARIANT: decisions[VARIANT].fillna("champion").astype(str)})
    # lift needs rewards, not features: blank the feature JSON so the join's row parser
    # (which still checks every propensity and pmf) does not decode it
    slim = decisions.assign(**{CUSTOMER_FEATURES: "{}", CONTEXT: "{}"})
    try:
        joined = join_logs(slim, rewards, catalog, now, report, reward_mode, exclude_holdout=False)
        outcomes = joined.frame[[EVENT_ID, REWARD]]
    except TrainingDataError:
        outcomes = pd.DataFrame({EVENT_ID: [], REWARD: []})
    rewarded: set[str] = set()
    if not rewards.empty:
        ok = rewards[COUNTED].astype(bool) if COUNTED in rewards else True
        rewarded = set(rewards.loc[ok, EVENT_ID]) if ok is not True else set(rewards[EVENT_ID])
    result["decision_points"] = variant_table(decisions, outcomes, rewarded, mde)
    result["log"] = report.as_dict()
    return result


def format_report(report: dict[str, Any]) -> str:
    """``maestro report``'s text: one table per decision point."""
    lines: list[str] = []
    points = report.get("decision_points") or {}
    if not points:
        return "no logged decisions yet"

    for dp, entry in points.items():
        lines.append(f"== {dp}")
        lines.extend(_table(entry["variants"]))
        for name, seg in (entry.get("segments") or {}).items():
            lines.append(f"-- {dp}, segment {name}")
            lines.extend(_table(seg["variants"]))
    effect = "10% of the baseline's mean" if report.get("mde") is None else f"{report['mde']:g}"
    lines.append(
        f"(+n): decisions still needed in the larger-need arm to detect an effect of {effect} "
        "(two-sided α = 0.05, power 0.8); intervals: Welch 95%"
    )
    return "\n".join(lines)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def _table(variants: list[dict[str, Any]]) -> list[str]:
    """The lines of one variant table of :func:`format_report`."""
    fmt = _fmt
    lines = [
        f"{'variant':<14}{'decisions':>10}{'rewards':>9}{'mean':>9}  {'95% CI':<20}"
        f"{'lift vs holdout [95% CI] (n still needed)':<46} lift vs rules [95% CI]"
    ]
    for v in variants:
        ci = f"[{fmt(v['ci_low'])}, {fmt(v['ci_high'])}]"
        lifts = []
        for base in BASELINES:
            lift = v["lift"].get(base)
            if lift is None:
                lifts.append("-")
            else:
                more = lift["sample_size"]["remaining"]
                need = max(more["variant"], more["baseline"])
                lifts.append(
                    f"{lift['diff']:+.4f} [{lift['ci_low']:+.4f}, {lift['ci_high']:+.4f}]"
                    + (f" (+{need})" if need else "")
                )
        lines.append(
            f"{v['variant']:<14}{v['decisions']:>10}{v['rewards']:>9}"
            f"{fmt(v['mean_reward']):>9}  {ci:<20}{lifts[0]:<46} {lifts[1]}"
        )
    return lines
