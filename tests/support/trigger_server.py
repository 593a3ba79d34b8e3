"""A real ``maestro`` uvicorn server process with triggers and delivery, for the trigger
integration tests: ``python trigger_server.py HOME PORT`` serves the workspace at HOME
(in-memory features: customers ``vip-<n>`` with a lifetime value of 5,000 and ``plain-<n>``
with 10, every consent granted) until SIGTERM (a graceful stop rolls the log to Parquet)
or SIGKILL; its triggers' decisions go through the workspace's delivery outbox to the
destinations of ``HOME/triggers.yaml``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from live_servers import ALL_CONSENT, live_settings


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
    settings = live_settings(home, timer_poll_seconds=0.02, timer_lease_seconds=5.0,
                             delivery_poll_seconds=0.05, delivery_backoff_seconds=0.05,
                             delivery_backoff_max_seconds=0.2)
    app = build_app(settings, layer)
    uvicorn.Server(uvicorn_config(app, "127.0.0.1", port)).run()  # type: ignore[arg-type]


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
