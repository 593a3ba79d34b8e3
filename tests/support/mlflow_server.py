"""A real MLflow tracking server for the cluster tests: ``mlflow server`` with its backend
store in a database of the session's PostgreSQL (through psycopg 3, the driver Maestro
ships), its artifacts served from a fresh temporary directory, on a free 127.0.0.1 port,
telemetry off. Started once per session (``tests/conftest.py``'s ``mlflow_server``),
stopped (and its directory removed) at its end."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from live_servers import free_port, wait_http


@dataclass
class MlflowServer:
    process: subprocess.Popen
    port: int
    root: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        try:  # the server's own process group: its uvicorn workers go with it
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        except ProcessLookupError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


def start_mlflow(database_url: str) -> MlflowServer:
    """``mlflow server`` on ``database_url`` (``postgresql://…``, a fresh database)."""
    backend = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    port, root = free_port(), Path(tempfile.mkdtemp(prefix="maestro-mlflow-"))
    env = {**os.environ, "MLFLOW_ENABLE_TELEMETRY": "false", "DO_NOT_TRACK": "1"}
    mlflow = Path(sys.executable).with_name("mlflow")
    log = open(root / "server.log", "wb")  # noqa: SIM115 - the server's lifetime
    process = subprocess.Popen(
        [str(mlflow), "server", "--backend-store-uri", backend,
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=root,
    )
    server = MlflowServer(process, port, root)
    try:
        wait_http(f"{server.url}/health", timeout=120)
    except TimeoutError:
        said = (root / "server.log").read_text(errors="replace")[-2000:]
        server.stop()
        raise RuntimeError(f"mlflow server did not start: {said}") from None
    return server
