"""The live dashboard: an in-process recorder of recent decisions and the page's data.

:class:`LiveStats` keeps one bucket per wall-clock second for the last ``window``
seconds: decisions, degraded answers, the channel and variant of each decision and a
bounded sample of latencies. :func:`dashboard_data` turns it into the JSON behind
``GET /dashboard/data`` — decisions per second, channel mix over time, degraded-answer
rate, latency percentiles, the champion of each decision point and when it changed —
plus the reward rate per variant with 95% intervals from the Parquet logs
(:mod:`training.lift`, the same figures as ``GET /experiments``).

With several replicas (Ray Serve) each replica records what it answered, so the live
series are those of the replica that served the page; the reward figures, read from the
shared logs, cover every replica.

The page itself (``page.html``, shipped in this package) is static HTML with inline
CSS and JavaScript: it fetches ``/dashboard/data`` every two seconds with the API key
given in the page's ``key`` field (kept in ``sessionStorage``) and draws inline SVG.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

from training.lift import experiment_report

_LATENCY_SAMPLES = 256  # per second


@dataclass
class _Second:
    decisions: int = 0
    degraded: int = 0
    channels: Counter[str] = field(default_factory=Counter)
    variants: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)


@dataclass
class ChampionChange:
    decision_point: str
    policy: str
    version: str
    source: str
    since: float


class LiveStats:
    """Per-second buckets of the last ``window`` seconds (thread-safe, O(1) per decision)."""

    def __init__(self, window: int = 600) -> None:
        self.window = window
        self.started = time.time()
        self._lock = threading.Lock()
        self._seconds: dict[int, _Second] = {}
        self._champions: dict[str, ChampionChange] = {}
        self._history: list[ChampionChange] = []

    def record(
        self, now: float, variant: str, channel: str | None, degraded: bool, latency: float
    ) -> None:
        second = int(now)
        with self._lock:
            bucket = self._seconds.get(second)
            if bucket is None:
                bucket = self._seconds[second] = _Second()
                if len(self._seconds) > self.window + 5:
                    for old in [s for s in self._seconds if s <= second - self.window]:
                        del self._seconds[old]
            bucket.decisions += 1
            bucket.degraded += degraded
            bucket.channels[channel or "none"] += 1
            bucket.variants[variant] += 1
            if len(bucket.latencies) < _LATENCY_SAMPLES:
                bucket.latencies.append(latency)

    def champion(self, decision_point: str, policy: str, version: str, source: str) -> None:
        """Note the policy serving ``decision_point``; a change is timestamped."""
        with self._lock:
            current = self._champions.get(decision_point)
            if current is not None and (current.version, current.source) == (version, source):
                return
            change = ChampionChange(decision_point, policy, version, source, time.time())
            self._champions[decision_point] = change
            self._history.append(change)
            del self._history[:-100]

    def snapshot(self, now: float | None = None, seconds: int = 120, bin_seconds: int = 10
                 ) -> dict[str, Any]:
        """Series over the last ``seconds`` (per second) and channel mix per ``bin_seconds``."""
        end = int(now if now is not None else time.time())
        start = end - seconds + 1
        with self._lock:
            buckets = {s: b for s, b in self._seconds.items() if start <= s <= end}
            champions = [vars(c).copy() for c in self._champions.values()]
            history = [vars(c).copy() for c in self._history]
        times = list(range(start, end + 1))
        per_second = [buckets[s].decisions if s in buckets else 0 for s in times]
        degraded = [buckets[s].degraded if s in buckets else 0 for s in times]
        channels: set[str] = set()
        variants: Counter[str] = Counter()
        for b in buckets.values():
            channels.update(b.channels)
            variants.update(b.variants)
        mix_bins = []
        lat_series: dict[str, list[Any]] = {"t": [], "p50": [], "p90": [], "p99": []}
        for lo in range(start, end + 1, bin_seconds):
            counts: Counter[str] = Counter()
            sample: list[float] = []
            for s in range(lo, min(lo + bin_seconds, end + 1)):
                if s in buckets:
                    counts.update(buckets[s].channels)
                    sample.extend(buckets[s].latencies)
            if sample:
                qs = np.percentile(np.array(sample) * 1000.0, [50, 90, 99])
                lat_series["t"].append(lo)
                for name, q in zip(("p50", "p90", "p99"), qs, strict=True):
                    lat_series[name].append(float(q))
            total = sum(counts.values())
            mix_bins.append(
                {"t": lo, "n": total,
                 "shares": {c: counts[c] / total for c in sorted(channels)} if total else {}}
            )
        lat = np.array([x for b in buckets.values() for x in b.latencies], dtype=float) * 1000.0
        recent = [s for s in times if s > end - 10]
        total = int(sum(per_second))
        return {
            "now": end,
            "window_seconds": seconds,
            "decisions_total": total,
            "decisions_per_second": {"t": times, "n": per_second},
            "current_rate": sum(per_second[-10:]) / max(1, len(recent)),
            "degraded_rate": (sum(degraded) / total) if total else 0.0,
            "degraded_per_second": degraded,
            "channels": sorted(channels),
            "channel_mix": mix_bins,
            "variants": dict(sorted(variants.items())),
            "latency_ms": {
                f"p{q}": float(np.percentile(lat, q)) if lat.size else None for q in (50, 90, 99)
            }
            | {"samples": int(lat.size)},
            "latency_series": lat_series,
            "champions": sorted(champions, key=lambda c: c["decision_point"]),
            "champion_history": history,
        }


def page() -> bytes:
    """The dashboard page (static, shipped with the package)."""
    return resources.files("serving.dashboard").joinpath("page.html").read_bytes()


def _lift(lift: dict[str, Any] | None) -> dict[str, float] | None:
    if lift is None:
        return None
    return {k: lift[k] for k in ("diff", "ci_low", "ci_high", "p_value")}


def dashboard_data(service: Any, experiments_report: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON the page draws: live series plus the reward rate per variant."""
    for dp in service.catalog.names():
        loaded = service.policies.get(dp)
        service.live.champion(dp, loaded.policy.kind, loaded.version, loaded.source)
    data = service.live.snapshot()
    rewards: list[dict[str, Any]] = []
    for dp, entry in ((experiments_report or {}).get("decision_points") or {}).items():
        for v in entry.get("variants", []):
            rewards.append(
                {"decision_point": dp, "variant": v["variant"], "n": v["matured"],
                 "mean": v["mean_reward"], "ci_low": v["ci_low"], "ci_high": v["ci_high"],
                 "lift_holdout": _lift(v["lift"].get("holdout")),
                 "lift_rules": _lift(v["lift"].get("rules"))}
            )
    data["reward_by_variant"] = rewards
    drift = getattr(service, "drift", None)  # the drift detectors' view (None: off)
    data["drift"] = drift.snapshot() if drift is not None else {"points": [], "alarms": []}
    data["experiments_generated_at"] = (experiments_report or {}).get("generated_at")
    data["stages"] = stage_rows(service)
    return data


def stage_rows(service: Any) -> list[dict[str, Any]]:
    """Each decision point's rollout stage, one row per point (``GET /stages``, short)."""
    rollout = getattr(service, "rollout", None)
    if rollout is None:
        return []
    rows = []
    for dp, s in rollout.describe().items():
        last = s.get("last_rollback") or {}
        rows.append({
            "decision_point": dp, "stage": s["stage"], "champion": s["champion"],
            "shadow": s["shadow"], "canary": s["canary"],
            "previous_champion": s["previous_champion"], "share": s["share"],
            "guarded_decisions": (s.get("guard") or {}).get("decisions"),
            "last_rollback": (
                f"v{last['rolled_back_version']} ({last['guardrail']}, "
                f"{last['decisions']} decisions)" if last else None
            ),
        })
    return rows


def _fingerprint(dataset: Any) -> tuple[int, float]:
    """How many parts the log dataset (a :class:`training.logs.location.LogLocation`) has,
    and the newest one's modification time: changes when a part is added or rewritten."""
    files = [p for kind in ("decisions", "rewards") for p in dataset.parts(kind)]
    infos = dataset.filesystem.get_file_info(files) if files else []
    return len(files), max((i.mtime.timestamp() for i in infos if i.mtime), default=0.0)


class ExperimentsView:
    """``GET /experiments``: :func:`training.lift.experiment_report` over the service's
    logs, recomputed only when a Parquet file was added (at most once per ``min_seconds``)."""

    def __init__(self, service: Any, min_seconds: float = 1.0) -> None:
        self.service = service
        self.min_seconds = min_seconds
        self._lock = threading.Lock()
        self._key: tuple[int, float] | None = None
        self._at = 0.0
        self._report: dict[str, Any] | None = None

    def report(self) -> dict[str, Any]:
        with self._lock:
            now = time.time()
            if self._report is not None and now - self._at < self.min_seconds:
                return self._report
            key = _fingerprint(self.service.log.dataset)
            if self._report is None or key != self._key:
                report = experiment_report(
                    self.service.log.dataset,
                    self.service.catalog,
                    now,
                    reward_mode=self.service.log.reward_mode,
                )
                exp = self.service.experiments
                report["config"] = exp.describe() if exp is not None else None
                self._report, self._key = report, key
            self._at = now
            return self._report
