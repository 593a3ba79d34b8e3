"""Shared feature-store fixtures: one real Feast workspace (SQLite online store) per
session, and one real ``redis-server`` (started here, on a free 127.0.0.1 port) with a
second workspace materialised into it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"redis-server did not listen on 127.0.0.1:{port}")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real redis-server on 127.0.0.1 (a free port), no persistence; yields the port.
    Fails (does not skip) when redis-server is missing: `make test-deps` installs it."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: run `make test-deps` "
                    "(apt-get install -y redis-server)")
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def redis_workspace(tmp_path_factory: pytest.TempPathFactory, redis_server: int) -> Path:
    """A second workspace whose online store is the test's redis-server."""
    from features.workspace import init_feature_workspace

    home = tmp_path_factory.mktemp("maestro-redis-home")
    init_feature_workspace(home, customers=CUSTOMERS, seed=SEED,
                           online_store=f"redis://127.0.0.1:{redis_server}")
    return home


def _as_unprivileged(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: drop to ``nobody`` when the tests run as root."""
    if os.geteuid() != 0:
        return cmd
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *cmd]


@pytest.fixture(scope="session")
def postgres_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL 15 (``initdb`` into a temp dir, ``pg_ctl start`` on a free
    127.0.0.1 port, trust auth); yields its DSN. Fails (does not skip) without the binaries."""
    bindir = Path(shutil.which("initdb") or "/usr/local/bin/initdb").parent
    if not (bindir / "initdb").exists() or not (bindir / "pg_ctl").exists():
        pytest.fail("PostgreSQL's initdb and pg_ctl are not installed")
    # a `mktemp -d` of its own: the unprivileged server cannot enter pytest's 0700 tree
    root = Path(tempfile.mkdtemp(prefix="maestro-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, user="nobody")
    data, port = root / "data", _free_port()
    subprocess.run(
        _as_unprivileged(
            [str(bindir / "initdb"), "-D", str(data), "-U", "maestro", "--auth=trust", "-E", "UTF8"]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
    ctl = [str(bindir / "pg_ctl"), "-D", str(data)]
    subprocess.run(
        _as_unprivileged([*ctl, "-o", options, "-l", str(root / "log"), "-w", "start"]),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        yield f"host=127.0.0.1 port={port} user=maestro dbname=postgres"
    finally:
        subprocess.run(
            _as_unprivileged([*ctl, "-m", "fast", "-w", "stop"]),
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(root, ignore_errors=True)
