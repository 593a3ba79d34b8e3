"""Running ``maestro`` as an operator does: a subprocess on this tree's code, in a
workspace's environment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def maestro(
    args: list[str], env: dict[str, str], timeout: float = 600
) -> subprocess.CompletedProcess:
    """``maestro ARGS`` in a subprocess (this tree's code), its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def workspace_env(home: Path) -> dict[str, str]:
    env = {**os.environ, "MAESTRO_HOME": str(home), "PYTHONPATH": str(ROOT)}
    for name in ("MLFLOW_TRACKING_URI", "MAESTRO_API_KEY", "MAESTRO_ONLINE_STORE"):
        env.pop(name, None)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(
    proc: subprocess.Popen, base_url: str, why: Callable[[], str], seconds: float = 180
) -> None:
    """Until ``base_url``'s ``/readyz`` answers 200; fails with ``why()`` (the server's
    stderr) when the server exits first, or after ``seconds``."""
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, why()[-3000:]
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{base_url} did not become ready in {seconds:.0f} s")
