"""The commands print their own lines only: the libraries' warnings, log lines and
printed chatter go to ``$MAESTRO_HOME/maestro.log``, and to the terminal as well with
``maestro --verbose``; a Ctrl-C of ``maestro serve`` ends with one clean line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from cli_run import free_port, maestro, wait_ready

ANSI = "\x1b["
#: what the libraries printed on every command before their output was routed
NOISE = ("Warning", ANSI, "Successfully registered", "already exists", "Created version")


def _noise(text: str) -> list[str]:
    return [n for n in NOISE if n in text]


def test_init_and_train_print_only_their_own_lines(workspace) -> None:
    init, train = workspace.init, workspace.train
    assert init.stdout.startswith("feature store: 200 customers"), init.stdout
    assert "champions: cold-start rules registered for" in init.stdout
    assert "cart_abandoned: run " in train.stdout
    for out in (init.stdout, init.stderr, train.stdout, train.stderr):
        assert _noise(out) == [], out[-2000:]
    assert init.stderr == "" and train.stderr == "", (init.stderr, train.stderr)
    log = (workspace.home / "maestro.log").read_text()
    # the chatter is kept, in the log file, without colour codes
    assert "Successfully registered model 'maestro-default'" in log
    assert "Created version '2' of model 'maestro-cart_abandoned'" in log
    assert "SADeprecationWarning" in log
    assert ANSI not in log


def test_promote_is_quiet(workspace) -> None:
    result = maestro(
        ["promote", "--decision-point", "cart_abandoned", "--version", "1"], workspace.env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == ""
    assert len(result.stdout.splitlines()) == 1 and "cart_abandoned" in result.stdout
    assert _noise(result.stdout) == []


def test_verbose_shows_the_libraries_output(workspace) -> None:
    result = maestro(
        ["--verbose", "train", "--policy", "linucb", "--decision-point", "cart_abandoned"],
        workspace.env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "cart_abandoned: run " in result.stdout
    err = result.stderr
    assert "already exists. Creating a new version" in err, err[-3000:]
    assert "Created version" in err
    assert "Warning" in err  # SQLAlchemy's and MLflow's, as the libraries wrote them
    assert ANSI in err


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_serve_stops_cleanly(workspace, tmp_path, how) -> None:
    """Ctrl-C: SIGINT to the whole process group, as a terminal sends it; SIGTERM: to the
    server process, as an orchestrator sends it."""
    port = free_port()
    out_path, err_path = tmp_path / "out.txt", tmp_path / "err.txt"
    with out_path.open("w") as out, err_path.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--engine", "uvicorn", "--port",
             str(port)],
            env=workspace.env,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        try:
            wait_ready(proc, f"http://127.0.0.1:{port}", err_path.read_text)
            if how == "ctrl-c":
                os.killpg(proc.pid, signal.SIGINT)
            else:
                proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    stdout, stderr = out_path.read_text(), err_path.read_text()
    assert code == 0, stderr[-3000:]
    lines = stdout.splitlines()
    assert lines[0].startswith(f"maestro: serving on http://127.0.0.1:{port} (uvicorn")
    assert lines[-1] == "maestro: stopped"
    assert "Traceback" not in stderr and "error" not in stderr.lower(), stderr[-3000:]
    assert _noise(stdout + stderr) == []

