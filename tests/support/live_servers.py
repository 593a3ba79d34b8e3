"""The one live server of the HTTP test suites: the real ``DecisionService`` behind the real
app on a real uvicorn server at 127.0.0.1, run in a thread of the test process so a test
can reach into its service and feature layer (switch the feature store off, read the log).

``tests/conftest.py`` exposes it as the session fixture ``live_servers``; the serving,
reliability, routing and experiment suites each build their settings and customers and
start their server through it. ``free_port`` and ``wait_http`` serve tests that start a
server of their own (a subprocess, a Ray cluster).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

KEYS = ("key-old-1234", "key-new-5678")
ALL_CONSENT = {
    f"consent_{c}": True for c in ("email", "push", "sms", "in_app", "whatsapp", "call_center")
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 60.0, headers: dict[str, str] | None = None) -> None:
    """Poll ``url`` until it answers below 500; ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0, headers=headers).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not come up in {timeout} s")


@contextlib.contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """``app`` on a real uvicorn server at a free 127.0.0.1 port, in a thread of the test
    process; yields its base URL once ``/healthz`` answers, stops it on exit."""
    import uvicorn

    from serving.engines.runner import uvicorn_config

    port = free_port()
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/healthz", timeout=120)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def live_settings(home: Path, **overrides: Any) -> Any:
    """Settings of a test server under ``home``: in-memory features, MLflow in
    ``home/mlflow.db``, policy polls and log rolls every 0.5 s so tests see them quickly;
    ``overrides`` win."""
    from serving.settings import Settings

    options: dict[str, Any] = {
        "home": home,
        "mlflow_tracking_uri": f"sqlite:///{home / 'mlflow.db'}",
        "poll_seconds": 0.5,
        "roll_seconds": 0.5,
        "feature_source": "memory",
        **overrides,
    }
    return Settings(**options)


@dataclass
class LiveServer:
    """A running server: its address, its service and layer, and a client already pointed
    at it (carrying the bearer key when the server was started with one)."""

    base_url: str
    service: Any
    layer: Any
    home: Path
    settings: Any
    client: httpx.Client
    uv: Any
    thread: threading.Thread

    @property
    def tracking_uri(self) -> str:
        """The MLflow store the server's policy store polls."""
        return str(self.settings.tracking_uri)

    def stop(self) -> None:
        """Close the client and let uvicorn finish its requests and exit (idempotent)."""
        self.client.close()
        self.uv.should_exit = True
        self.thread.join(timeout=30)


def start_live_server(
    settings: Any, layer: Any, *, api_key: str | None = None, client_timeout: float = 10.0
) -> LiveServer:
    """Build the service from ``settings`` over ``layer``, serve it on a free port and wait
    until ``/healthz`` answers; the client sends ``api_key`` as a bearer token if given."""
    import uvicorn

    from serving.api.app import create_app
    from serving.engines.runner import uvicorn_config
    from serving.factory import build_service

    service = build_service(settings, layer)
    app = create_app(service, api_keys=settings.api_keys, max_body_bytes=settings.max_body_bytes)
    port = free_port()
    uv = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port))  # type: ignore[arg-type]
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/healthz", timeout=120)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    client = httpx.Client(base_url=base, headers=headers, timeout=client_timeout)
    return LiveServer(base, service, layer, Path(settings.home), settings, client, uv, thread)


@dataclass
class LiveServers:
    """Starts live servers and stops every one still running when the session ends."""

    started: list[LiveServer] = field(default_factory=list)

    def start(
        self, settings: Any, layer: Any, *, api_key: str | None = None,
        client_timeout: float = 10.0,
    ) -> LiveServer:
        """``start_live_server``, remembered for the final ``stop_all``."""
        srv = start_live_server(settings, layer, api_key=api_key, client_timeout=client_timeout)
        self.started.append(srv)
        return srv

    def stop_all(self) -> None:
        """Stop the servers in the reverse order of their start."""
        while self.started:
            self.started.pop().stop()
