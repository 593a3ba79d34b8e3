"""Fixtures for the decision core: the shipped catalog and a synthetic learning problem."""

from __future__ import annotations

import pytest

from policies.catalog import Catalog, load_catalog


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()
