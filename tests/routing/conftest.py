"""Fixtures of the routing tests: a real uvicorn server on 127.0.0.1 around the real
DecisionService (in-memory feature layer, real MLflow SQLite store and event log under
tmp_path), as in ``tests/serving/conftest.py``."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

os.environ.setdefault("FEAST_USAGE", "False")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")

ALL_CONSENT = {
    f"consent_{c}": True for c in ("email", "push", "sms", "in_app", "whatsapp", "call_center")
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RoutingServer:
    base_url: str
    service: Any
    client: httpx.Client
    layer: Any
    tracking_uri: str


@pytest.fixture(scope="session")
def routing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoutingServer]:
    import uvicorn

    from features.source import InMemoryFeatureSource
    from serving.api.app import create_app
    from serving.engines.runner import uvicorn_config
    from serving.factory import build_service
    from serving.service.feature_layer import InMemoryFeatureLayer
    from serving.settings import Settings

    home = tmp_path_factory.mktemp("routing-home")
    rows = {
        "c-plain": {**ALL_CONSENT, "churn_risk": 0.1, "tier": "standard"},
        "c-vip": {**ALL_CONSENT, "churn_risk": 0.1, "tier": "vip"},
        "c-frustrated": {**ALL_CONSENT, "churn_risk": 0.1, "tier": "standard"},
    }
    layer = InMemoryFeatureLayer(InMemoryFeatureSource(rows))
    settings = Settings(
        home=home,
        mlflow_tracking_uri=f"sqlite:///{home / 'mlflow.db'}",
        poll_seconds=5.0,
        roll_seconds=0.5,
        feature_source="memory",
        cold_start_kind="uniform",  # uniform logging: the logs train and evaluate well
    )
    service = build_service(settings, layer)
    app = create_app(service, api_keys=settings.api_keys, max_body_bytes=settings.max_body_bytes)
    port = _free_port()
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("routing test server did not come up")
        time.sleep(0.1)
    client = httpx.Client(base_url=base, timeout=10)
    yield RoutingServer(base, service, client, layer, settings.tracking_uri)
    client.close()
    server.should_exit = True
    thread.join(timeout=30)
