"""The wheel as users install it: ``python -m build`` makes the sdist and, from it, the wheel
(compiled extensions included); the wheel goes into a fresh Python 3.11 venv WITHOUT
extras (torch's CPU build first, every version from ``requirements/lock.txt``), and the
installed ``maestro`` runs the first session from a directory outside the repository, so
nothing is imported from the source tree: a runtime import left in the ``dev`` extra fails
here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
KEY = "wheel-key"


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 900) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` directory of a fresh venv holding only the wheel and its dependencies."""
    work = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    _run(
        [
            sys.executable,
            "-m",
            "build",
            "--no-isolation",
            "--outdir",
            str(work / "dist"),
            str(ROOT),
        ],
        work,
        env,
    )
    wheels = list((work / "dist").glob("maestro_nba-*.whl"))
    assert len(wheels) == 1 and "cp311" in wheels[0].name  # the extensions were compiled
    _run([sys.executable, "-m", "venv", str(work / "venv")], work, env)
    pip = [str(work / "venv" / "bin" / "python"), "-m", "pip", "install", "-q"]
    _run([*pip, "torch==2.13.0"], work, env)  # the CPU build, before anything pulls CUDA
    _run([*pip, "-c", str(ROOT / "requirements" / "lock.txt"), str(wheels[0])], work, env)
    return work / "venv" / "bin"


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(
        MAESTRO_HOME=str(home),
        MAESTRO_API_KEY=KEY,
        FEAST_USAGE="False",
        RAY_USAGE_STATS_ENABLED="0",
        DO_NOT_TRACK="1",
        MLFLOW_ENABLE_TELEMETRY="false",
    )
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def test_the_installed_wheel_runs_the_first_session(installed: Path, tmp_path: Path) -> None:
    from live_servers import free_port  # type: ignore[import-not-found]

    maestro = str(installed / "maestro")
    env = _env(tmp_path / "home")
    cwd = tmp_path  # outside the repository: only the installed package can be imported
    assert "simulate" in _run([maestro, "--help"], cwd, env)
    check = "import policies._decide, training._join; print(policies.__file__)"
    where = _run([str(installed / "python"), "-c", check], cwd, env)
    assert "site-packages" in where  # the installed copy, compiled
    _run([maestro, "init", "--customers", "500"], cwd, env)
    port = free_port()
    server = subprocess.Popen(
        [maestro, "serve", "--engine", "uvicorn", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        auth = {"Authorization": f"Bearer {KEY}"}
        while True:
            try:
                if (
                    httpx.get(
                        f"http://127.0.0.1:{port}/readyz", headers=auth, timeout=2
                    ).status_code
                    == 200
                ):
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "serve never ready"
            time.sleep(0.5)
        out = tmp_path / "sim"
        _run(
            [
                maestro,
                "simulate",
                "--target",
                f"http://127.0.0.1:{port}",
                "--steps",
                "400",
                "--customers",
                "500",
                "--out",
                str(out),
            ],
            cwd,
            env,
        )
        assert (out / "report.json").is_file() and (out / "report.html").is_file()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    assert server.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the SIGTERM it handled
    _run([maestro, "train"], cwd, env)
    summary = _run([maestro, "evaluate", "--policy", "champion"], cwd, env)
    assert "95% interval" in summary
    _run([maestro, "report"], cwd, env)
    erased = _run([maestro, "erase", "c-000001"], cwd, env)
    assert "c-000001" in erased or "decisions" in erased
