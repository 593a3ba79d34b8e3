"""Fixtures of the routing tests: the live uvicorn server of
``tests/support/live_servers.py`` around the real DecisionService (in-memory feature layer,
real MLflow SQLite store and event log under tmp_path), without authentication."""

from __future__ import annotations

import pytest
from live_servers import ALL_CONSENT, LiveServer, LiveServers, live_settings


@pytest.fixture(scope="session")
def routing_server(
    tmp_path_factory: pytest.TempPathFactory, live_servers: LiveServers
) -> LiveServer:
    """Three customers differing in tier; the policy logs uniformly, so the logs train and
    evaluate well."""
    from features.source import InMemoryFeatureSource
    from serving.service.feature_layer import InMemoryFeatureLayer

    rows = {
        "c-plain": {**ALL_CONSENT, "churn_risk": 0.1, "tier": "standard"},
        "c-vip": {**ALL_CONSENT, "churn_risk": 0.1, "tier": "vip"},
        "c-frustrated": {**ALL_CONSENT, "churn_risk": 0.1, "tier": "standard"},
    }
    settings = live_settings(
        tmp_path_factory.mktemp("routing-home"), poll_seconds=5.0, cold_start_kind="uniform"
    )
    return live_servers.start(settings, InMemoryFeatureLayer(InMemoryFeatureSource(rows)))
