"""Shared fixtures of the simulator tests: one small seeded world per session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("FEAST_USAGE", "False")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")


@pytest.fixture(scope="session")
def small_env():
    from simulator.environment import EnvConfig, JourneyEnvironment

    return JourneyEnvironment(EnvConfig(customers=300))
