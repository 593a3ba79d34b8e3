"""A real ``redis-server`` for a test session: started on a free 127.0.0.1 port without
persistence, stopped at the end; ``tests/conftest.py`` exposes it as the session fixture
``redis_server`` (its port), so one Redis serves every suite that needs one."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from live_servers import free_port


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Return once 127.0.0.1:``port`` accepts connections; ``RuntimeError`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"redis-server did not listen on 127.0.0.1:{port}")


@contextmanager
def running_redis(workdir: Path) -> Iterator[int]:
    """Run a redis-server in ``workdir``; yields its port. ``FileNotFoundError`` when the
    binary is missing (the fixture turns it into a failure, never a skip)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server is not installed: run `make test-deps` "
                                "(apt-get install -y redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
