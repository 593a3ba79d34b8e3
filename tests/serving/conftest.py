"""Shared fixtures of the serving tests: a real MLflow SQLite store and a real uvicorn
server on 127.0.0.1 (in a thread of the test process, so tests can switch the in-memory
feature store off), both session-scoped."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

os.environ.setdefault("FEAST_USAGE", "False")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")

KEYS = ("key-old-1234", "key-new-5678")
ALL_CONSENT = {
    f"consent_{c}": True for c in ("email", "push", "sms", "in_app", "whatsapp", "call_center")
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0, headers=headers).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not come up in {timeout} s")


@dataclass
class Server:
    base_url: str
    service: object
    layer: object
    home: Path
    tracking_uri: str
    client: httpx.Client
    settings: object


@pytest.fixture(scope="session")
def helpers() -> object:
    """``free_port`` and ``wait_http`` for tests that start their own servers."""

    class _Helpers:
        pass

    h = _Helpers()
    h.free_port = free_port  # type: ignore[attr-defined]
    h.wait_http = wait_http  # type: ignore[attr-defined]
    return h


@pytest.fixture(scope="session")
def api_keys() -> tuple[str, ...]:
    return KEYS


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str) -> Iterator[Server]:
    import uvicorn

    from features.source import InMemoryFeatureSource
    from serving.api.app import create_app
    from serving.engines.runner import uvicorn_config
    from serving.factory import build_service
    from serving.service.feature_layer import InMemoryFeatureLayer
    from serving.settings import Settings

    home = tmp_path_factory.mktemp("home")
    rows = {
        "c-all": {**ALL_CONSENT, "timezone": "UTC"},
        "c-none": {"timezone": "UTC"},
        "c-complaint": {**ALL_CONSENT, "open_complaint": True},
        "c-overdue": {**ALL_CONSENT, "overdue_invoice": True},
        "c-erase": {**ALL_CONSENT},
        "c-events": {**ALL_CONSENT},
    }
    layer = InMemoryFeatureLayer(InMemoryFeatureSource(rows))
    settings = Settings(
        home=home,
        mlflow_tracking_uri=mlflow_uri,
        api_key=",".join(KEYS),
        poll_seconds=0.5,
        roll_seconds=0.5,
        feature_source="memory",
    )
    service = build_service(settings, layer)
    app = create_app(service, api_keys=settings.api_keys, max_body_bytes=settings.max_body_bytes)
    port = free_port()
    uv = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port))  # type: ignore[arg-type]
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/healthz", timeout=120)
    client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEYS[1]}"}, timeout=10)
    # quiet hours depend on the wall clock; the tests pin customers to UTC and check
    # rules that do not depend on the hour unless they say so
    yield Server(base, service, layer, home, mlflow_uri, client, settings)
    client.close()
    uv.should_exit = True
    thread.join(timeout=30)
