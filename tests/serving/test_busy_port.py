"""``maestro serve`` on a taken port fails at once with one line and exit 2, on both
engines, before anything slow starts (a real listening socket, the real command)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("engine", ["uvicorn", "ray"])
def test_a_busy_port_fails_at_once_with_one_line(engine: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "MAESTRO_HOME": str(tmp_path / "home")}
        t0 = time.monotonic()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "cli.main",
                "serve",
                "--engine",
                engine,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        elapsed = time.monotonic() - t0
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"maestro: error: port {port} is in use on 127.0.0.1"
    ]
    assert "serving on" not in proc.stdout
    assert elapsed < 10  # no Ray, no uvicorn start-up: the check comes first
    assert not (tmp_path / "home").exists()  # nothing created


def test_an_address_not_of_this_machine_is_refused(tmp_path: Path) -> None:
    from serving.engines.runner import ensure_port_free
    from serving.errors import CannotListenError

    with pytest.raises(CannotListenError, match="not an address of this machine"):
        ensure_port_free("192.0.2.1", 8000)  # TEST-NET-1: never a local address
