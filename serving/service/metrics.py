"""Prometheus metrics of one service (its own registry, so several apps can share a process)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.decisions = Counter(
            "maestro_decisions",
            "Answered decisions",
            ["decision_point", "action", "channel", "policy", "version"],
            registry=r,
        )
        self.degraded = Counter(
            "maestro_degraded_decisions",
            "Decisions answered by the fallback",
            ["decision_point", "reason"],
            registry=r,
        )
        self.unknown_customers = Counter(
            "maestro_unknown_customer_decisions",
            "Decisions for a customer the feature store holds no row for (decided from defaults)",
            ["decision_point"],
            registry=r,
        )
        self.latency = Histogram(
            "maestro_decide_latency_seconds",
            "Time spent inside /decide (service side)",
            ["decision_point"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.rewards = Counter(
            "maestro_rewards",
            "Rewards received",
            ["outcome"],
            registry=r,
        )
        self.reward_sum = Gauge(
            "maestro_reward_value_sum",
            "Sum of counted rewards",
            registry=r,
        )
        self.events = Counter("maestro_events", "Customer events ingested", ["type"], registry=r)
        self.policy_swaps = Counter(
            "maestro_policy_swaps", "Champion swaps", ["decision_point"], registry=r
        )
        self.policy_load_errors = Counter(
            "maestro_policy_load_errors",
            "Champion artefacts that failed to load",
            ["decision_point"],
            registry=r,
        )
        self.log_unsynced = Gauge(
            "maestro_log_unsynced_seconds",
            "Age of the oldest logged row not yet group-committed to disk",
            registry=r,
        )
        self.log_since_roll = Gauge(
            "maestro_log_seconds_since_roll",
            "Seconds since the spool was last rolled to Parquet",
            registry=r,
        )

        self._drift(r)

    def _drift(self, r: CollectorRegistry) -> None:
        """Drift detectors and online learning (:mod:`serving.service.drift`)."""
        self.drift_alarms = Counter(
            "maestro_drift_alarms", "Drift alarms raised", ["decision_point", "detector"],
            registry=r,
        )
        self.drift_alarm = Gauge(
            "maestro_drift_alarm",
            "1 while a drift alarm is raised (until a new champion is served), else 0",
            ["decision_point", "detector"], registry=r,
        )
        self.drift_psi = Gauge(
            "maestro_drift_feature_psi", "Worst feature PSI of the last full window",
            ["decision_point"], registry=r,
        )
        self.drift_joined = Counter(
            "maestro_drift_joined_rewards", "Rewards joined to this replica's decisions",
            ["decision_point"], registry=r,
        )
        self.online_updates = Counter(
            "maestro_online_updates", "Online learning updates of the served model",
            ["decision_point"], registry=r,
        )
        self.online_learned = Gauge(
            "maestro_online_learned_since",
            "Online updates of the served model since its registered version was loaded",
            ["decision_point"], registry=r,
        )

    def bind_log(self, unsynced: Callable[[], float], since_roll: Callable[[], float]) -> None:
        self.log_unsynced.set_function(unsynced)
        self.log_since_roll.set_function(since_roll)

    def render(self) -> bytes:
        return generate_latest(self.registry)
