"""Delivery's Prometheus metrics, on the service's registry (so ``/metrics`` shows them)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0, 120.0, 600.0)


class DeliveryMetrics:
    """Counters by destination (and cancellation reason kind), the enqueue-to-receipt
    latency, and the outbox's requests per state."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry or CollectorRegistry(auto_describe=True)
        self.registry = r
        self.enqueued = Counter("maestro_delivery_enqueued", "Triggered decisions accepted "
                                "for delivery", ["destination"], registry=r)
        self.delivered = Counter("maestro_delivery_delivered", "Deliveries acknowledged by "
                                 "their destination", ["destination"], registry=r)
        self.failed = Counter("maestro_delivery_failed", "Delivery attempts that failed",
                              ["destination", "error"], registry=r)
        self.retried = Counter("maestro_delivery_retried", "Deliveries scheduled for "
                               "another attempt", ["destination"], registry=r)
        self.dead_lettered = Counter("maestro_delivery_dead_lettered", "Deliveries given up "
                                     "on (dead letters)", ["destination"], registry=r)
        self.cancelled = Counter("maestro_delivery_cancelled", "Deliveries cancelled before "
                                 "sending, by reason", ["reason"], registry=r)
        self.latency = Histogram("maestro_delivery_latency_seconds", "From enqueue to the "
                                 "destination's acknowledgement", ["destination"],
                                 buckets=_BUCKETS, registry=r)
        self.outbox = Gauge("maestro_delivery_outbox", "Requests in the outbox by state",
                            ["state"], registry=r)

    def bind_outbox(self, states: tuple[str, ...],
                    counts: Callable[[tuple[str, ...]], dict[str, int]]) -> None:
        """Read the gauge of each of ``states`` from ``counts(states)`` at each scrape."""
        for state in states:
            self.outbox.labels(state).set_function(
                lambda s=state: float(counts((s,)).get(s, 0)))


def reason_kind(reason: str) -> str:
    """The bounded metric label of a cancellation reason: ``no_consent:email`` →
    ``consent``, ``cap:…``/``cooldown:…``/``repeat:…`` → ``contact_policy``,
    ``event:purchase`` → ``event:purchase``."""
    head = reason.split(":", 1)[0]
    if head == "no_consent":
        return "consent"
    if head in ("cap", "cooldown", "repeat"):
        return "contact_policy"
    return reason if head == "event" else head
