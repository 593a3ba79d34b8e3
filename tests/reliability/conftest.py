"""Fixtures of the reliability suite: the live uvicorn server of
``tests/support/live_servers.py`` over an in-memory feature layer of synthetic customers,
real MLflow (SQLite), and a figure recorder whose numbers are printed at the end of the run
(``RELIABILITY.md`` quotes them)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from live_servers import ALL_CONSENT, KEYS, LiveServer, LiveServers, live_settings

_FIGURES: dict[str, Any] = {}


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


@pytest.fixture(scope="session")
def start_rel_server(live_servers: LiveServers) -> Callable[..., LiveServer]:
    """Start a reliability server under ``home``: 200 synthetic customers plus ``rows``
    (or the given ``layer``), both API keys accepted, the client sending the newer one;
    ``settings_kwargs`` override the settings."""

    def start(
        home: Path,
        rows: dict[str, dict[str, Any]] | None = None,
        layer: Any | None = None,
        **settings_kwargs: Any,
    ) -> LiveServer:
        from serving.factory import memory_layer_from_synthetic

        home.mkdir(parents=True, exist_ok=True)
        if layer is None:
            layer = memory_layer_from_synthetic(200, seed=7)
            for cid, values in (rows or {}).items():
                layer.source.update(cid, values)
        settings = live_settings(home, **{"api_key": ",".join(KEYS), **settings_kwargs})
        return live_servers.start(settings, layer, api_key=KEYS[1], client_timeout=30)

    return start


@pytest.fixture(scope="session")
def rel_server(
    tmp_path_factory: pytest.TempPathFactory, start_rel_server: Callable[..., LiveServer]
) -> LiveServer:
    """One shared server: 200 synthetic customers plus ``c-all`` (every consent)."""
    home = tmp_path_factory.mktemp("rel-home")
    return start_rel_server(home, rows={"c-all": {**ALL_CONSENT, "timezone": "UTC"}})
