"""Fixtures of the reliability suite (issue #7): a real uvicorn server on 127.0.0.1 over
an in-memory feature layer of synthetic customers, real MLflow (SQLite), and a figure
recorder whose numbers are printed at the end of the run (``RELIABILITY.md`` quotes them).

The generic helpers (``free_port``, ``wait_http``, the API keys) are the serving suite's,
loaded from ``tests/serving/conftest.py`` rather than copied.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

os.environ.setdefault("FEAST_USAGE", "False")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")

_spec = importlib.util.spec_from_file_location(
    "maestro_serving_conftest", Path(__file__).parents[1] / "serving" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
serving_conftest = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = serving_conftest
_spec.loader.exec_module(serving_conftest)
free_port: Callable[[], int] = serving_conftest.free_port
wait_http: Callable[..., None] = serving_conftest.wait_http
KEYS: tuple[str, ...] = serving_conftest.KEYS
ALL_CONSENT: dict[str, bool] = serving_conftest.ALL_CONSENT
ROOT = Path(__file__).resolve().parents[2]

_FIGURES: dict[str, Any] = {}
sys.modules.setdefault("maestro_rel_conftest", sys.modules[__name__])


@pytest.fixture(scope="session")
def figure() -> Callable[[str, Any], None]:
    """Record one figure: ``figure("hostile.server_errors", 0)`` (printed at the end)."""

    def record(name: str, value: Any) -> None:
        _FIGURES[name] = value

    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _FIGURES:
        return
    terminalreporter.section("reliability figures")
    for name in sorted(_FIGURES):
        terminalreporter.write_line(f"{name}: {_FIGURES[name]}")
    out = os.environ.get("MAESTRO_RELIABILITY_JSON")
    if out:
        Path(out).write_text(json.dumps(_FIGURES, indent=2, sort_keys=True, default=str))


@dataclass
class RelServer:
    base_url: str
    service: Any
    layer: Any
    home: Path
    settings: Any
    client: httpx.Client
    uv: Any
    thread: threading.Thread

    def stop(self) -> None:
        self.client.close()
        self.uv.should_exit = True
        self.thread.join(timeout=30)


def start_server(
    home: Path,
    rows: dict[str, dict[str, Any]] | None = None,
    layer: Any | None = None,
    **settings_kwargs: Any,
) -> RelServer:
    """A real uvicorn server in a thread of this process (so a test can reach its service)."""
    import uvicorn

    from serving.api.app import create_app
    from serving.engines.runner import uvicorn_config
    from serving.factory import build_service, memory_layer_from_synthetic
    from serving.settings import Settings

    home.mkdir(parents=True, exist_ok=True)
    if layer is None:
        layer = memory_layer_from_synthetic(200, seed=7)
        for cid, values in (rows or {}).items():
            layer.source.update(cid, values)
    options = {
        "home": home,
        "mlflow_tracking_uri": f"sqlite:///{home / 'mlflow.db'}",
        "api_key": ",".join(KEYS),
        "poll_seconds": 0.5,
        "roll_seconds": 0.5,
        "feature_source": "memory",
        **settings_kwargs,
    }
    settings = Settings(**options)
    service = build_service(settings, layer)
    app = create_app(service, api_keys=settings.api_keys, max_body_bytes=settings.max_body_bytes)
    port = free_port()
    uv = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port))  # type: ignore[arg-type]
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/healthz", timeout=120)
    client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEYS[1]}"}, timeout=30)
    return RelServer(base, service, layer, home, settings, client, uv, thread)


@pytest.fixture(scope="session")
def rel_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelServer]:
    """One shared server: 200 synthetic customers plus ``c-all`` (every consent)."""
    home = tmp_path_factory.mktemp("rel-home")
    srv = start_server(home, rows={"c-all": {**ALL_CONSENT, "timezone": "UTC"}})
    yield srv
    srv.stop()
