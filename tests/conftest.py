"""Session-wide test setup: no telemetry leaves the machine; shared test support on sys.path;
the live HTTP server every HTTP suite starts its server through; the one redis-server."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("FEAST_USAGE", "False")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
# as `maestro` does (cli.output): MLflow installs no terminal handler of its own when imported
os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")

sys.path.insert(0, str(Path(__file__).parent / "support"))

from live_servers import LiveServers
from mlflow_server import MlflowServer, start_mlflow
from postgres_server import PostgresServer, start_postgres
from problems import ContextualProblem, segment_problem
from ray_two_nodes import TwoNodes, start_two_nodes
from redis_cluster_fixture import RedisServer, start_redis
from redis_server import running_redis


@pytest.fixture(scope="session")
def problem() -> ContextualProblem:
    """A Bernoulli contextual bandit whose best action depends on the customer's segment."""
    return segment_problem()


@pytest.fixture(scope="session")
def live_servers() -> Iterator[LiveServers]:
    """Starts real uvicorn servers (``LiveServers.start``); all are stopped at session end."""
    servers = LiveServers()
    yield servers
    servers.stop_all()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real redis-server on 127.0.0.1 (a free port), no persistence, shared by the whole
    session; yields the port. Fails (does not skip) when redis-server is missing."""
    try:
        with running_redis(tmp_path_factory.mktemp("redis")) as port:
            yield port
    except FileNotFoundError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server on 127.0.0.1 for the session (``initdb`` into a temporary
    directory); each test takes a fresh database with ``postgres.database()``. Missing
    binaries fail the test, never skip it."""
    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def cluster_redis() -> Iterator[RedisServer]:
    """A real redis-server on 127.0.0.1 for the session (the cluster tests' online store)."""
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ray_two_nodes() -> Iterator[TwoNodes]:
    """A two-node Ray cluster on this machine (head + worker), shared by the session."""
    nodes = start_two_nodes()
    yield nodes
    nodes.stop()


@pytest.fixture(scope="session")
def mlflow_server(postgres: PostgresServer) -> Iterator[MlflowServer]:
    """A real ``mlflow server`` on 127.0.0.1 for the session, its backend store a database
    of the session's PostgreSQL, its artifacts in a temporary directory."""
    server = start_mlflow(postgres.database())
    yield server
    server.stop()
