"""One delivery worker in its own OS process, for the two-process test: drains the outbox
named on the command line into a webhook until ``STOP_FILE`` exists, then prints how many
attempts failed and how many requests it delivered.

``python delivery_worker_proc.py sqlite|redis PATH_OR_URL PREFIX HOOK_URL SECRET STOP_FILE
[LEASE_SECONDS]``
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry

from serving.delivery.config import WebhookDestination
from serving.delivery.metrics import DeliveryMetrics
from serving.delivery.senders import Senders
from serving.delivery.worker import DeliveryWorker, RetryPolicy


def outbox(kind: str, where: str, prefix: str):  # type: ignore[no-untyped-def]
    if kind == "sqlite":
        from serving.state.outbox_sqlite import SQLiteOutbox

        return SQLiteOutbox(Path(where))
    from serving.state.outbox_redis import RedisOutbox

    return RedisOutbox(where, prefix=prefix)


async def main(
    kind: str, where: str, prefix: str, hook: str, secret: str, stop: str, lease: str = "30"
) -> None:
    box = outbox(kind, where, prefix)
    metrics = DeliveryMetrics(CollectorRegistry())
    worker = DeliveryWorker(box, {"hook": WebhookDestination("hook", hook, "S", secret.encode())},
                            Senders(2.0), None, metrics,
                            RetryPolicy(poll_seconds=0.02, backoff_seconds=0.05,
                                        backoff_max_seconds=0.2, concurrency=8,
                                        lease_seconds=float(lease)))
    worker.start()
    print("ready", flush=True)
    while not Path(stop).exists():
        await asyncio.sleep(0.05)
    await worker.stop()
    box.close()
    failed = sum(s.value for m in metrics.failed.collect() for s in m.samples
                 if s.name.endswith("_total"))
    print(int(failed), int(metrics.registry.get_sample_value(
        "maestro_delivery_delivered_total", {"destination": "hook"}) or 0), flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:8]))
