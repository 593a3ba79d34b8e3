"""Shared feature-store fixtures: one real Feast workspace (SQLite online store) per
session, and a second workspace materialised into the session's real ``redis-server``
(``tests/conftest.py``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("FEAST_USAGE", "False")

CUSTOMERS = 200
SEED = 11
# Sources in tests read with a 2 s bound (not the 100 ms default): the machine is shared
# and loaded, and these tests check values; the bound itself is tested with 50 ms.


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``$MAESTRO_HOME`` with a Feast repo of 200 customers, applied and materialised."""
    from features.workspace import init_feature_workspace

    home = tmp_path_factory.mktemp("maestro-home")
    init_feature_workspace(home, customers=CUSTOMERS, seed=SEED)
    return home


@pytest.fixture(scope="session")
def repo(workspace: Path) -> Path:
    return workspace / "feature_repo"


@pytest.fixture(scope="session")
def source(repo: Path):
    from features.feast.source import FeastFeatureSource

    src = FeastFeatureSource(repo, timeout=2.0)
    yield src
    src.close()


@pytest.fixture(scope="session")
def customers_frame():
    from features.synthetic import generate_customers

    return generate_customers(CUSTOMERS, SEED).features.set_index("customer_id")


@pytest.fixture(scope="session")
def redis_workspace(tmp_path_factory: pytest.TempPathFactory, redis_server: int) -> Path:
    """A second workspace whose online store is the test's redis-server."""
    from features.workspace import init_feature_workspace

    home = tmp_path_factory.mktemp("maestro-redis-home")
    init_feature_workspace(home, customers=CUSTOMERS, seed=SEED,
                           online_store=f"redis://127.0.0.1:{redis_server}")
    return home


@pytest.fixture()
def postgres_dsn(postgres) -> str:
    """A fresh database on the session's one PostgreSQL server (``tests/conftest.py``)."""
    return postgres.database()
