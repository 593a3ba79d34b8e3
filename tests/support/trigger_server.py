"""A real ``maestro`` uvicorn server process with triggers, for the trigger integration
tests: ``python trigger_server.py HOME PORT`` serves the workspace at HOME (in-memory
features: customers ``vip-<n>`` with a lifetime value of 5,000 and ``plain-<n>`` with 10,
every consent granted) until SIGTERM (a graceful stop rolls the log to Parquet) or
SIGKILL. Its delivery queue appends each request as one JSON line to
``HOME/deliveries.jsonl`` (the real queue is ``serving.delivery``'s; the tests count
fires by the decision log's rows and check these lines against them).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

from live_servers import ALL_CONSENT, live_settings


class JsonLinesQueue:
    """A DeliveryQueue writing each request to a file, flushed and synced per request."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (the process's life)
        self._lock = threading.Lock()

    def enqueue(self, request) -> None:  # type: ignore[no-untyped-def]
        line = json.dumps({"delivery_id": request.delivery_id, "trigger": request.trigger,
                           "customer_id": request.customer_id,
                           "destination": request.destination})
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())

    def note_event(self, customer_id: str, event_type: str, at: float) -> int:
        return 0


def customers(n: int = 200) -> dict[str, dict]:
    rows = {f"vip-{i}": {**ALL_CONSENT, "timezone": "UTC", "lifetime_value": 5000.0}
            for i in range(n)}
    rows.update({f"plain-{i}": {**ALL_CONSENT, "timezone": "UTC", "lifetime_value": 10.0}
                 for i in range(n)})
    return rows


def main(home: Path, port: int) -> None:
    import uvicorn

    from features.source import InMemoryFeatureSource
    from serving.engines.runner import uvicorn_config
    from serving.factory import build_app
    from serving.service.feature_layer import InMemoryFeatureLayer

    layer = InMemoryFeatureLayer(InMemoryFeatureSource(customers()))
    settings = live_settings(home, timer_poll_seconds=0.02, timer_lease_seconds=5.0)
    app = build_app(settings, layer, delivery=JsonLinesQueue(home / "deliveries.jsonl"))
    uvicorn.Server(uvicorn_config(app, "127.0.0.1", port)).run()  # type: ignore[arg-type]


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
