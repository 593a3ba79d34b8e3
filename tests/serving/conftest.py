"""Shared fixtures of the serving tests: a real MLflow SQLite store and the live uvicorn
server of ``tests/support/live_servers.py`` over an in-memory feature layer (so tests can
switch the feature store off), both session-scoped."""

from __future__ import annotations

import pytest
from live_servers import (
    ALL_CONSENT,
    KEYS,
    LiveServer,
    LiveServers,
    free_port,
    live_settings,
    wait_http,
)


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
def server(
    tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str, live_servers: LiveServers
) -> LiveServer:
    """The shared server: six customers with the consents and flags the tests need. Quiet
    hours depend on the wall clock; the tests pin customers to UTC and check rules that do
    not depend on the hour unless they say so."""
    from features.source import InMemoryFeatureSource
    from serving.service.feature_layer import InMemoryFeatureLayer

    rows = {
        "c-all": {**ALL_CONSENT, "timezone": "UTC"},
        "c-none": {"timezone": "UTC"},
        "c-complaint": {**ALL_CONSENT, "open_complaint": True},
        "c-overdue": {**ALL_CONSENT, "overdue_invoice": True},
        "c-erase": {**ALL_CONSENT},
        "c-events": {**ALL_CONSENT},
    }
    settings = live_settings(
        tmp_path_factory.mktemp("home"), mlflow_tracking_uri=mlflow_uri, api_key=",".join(KEYS)
    )
    layer = InMemoryFeatureLayer(InMemoryFeatureSource(rows))
    return live_servers.start(settings, layer, api_key=KEYS[1])
