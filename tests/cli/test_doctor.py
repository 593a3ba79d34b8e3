"""``maestro doctor`` on a real workspace (built by ``maestro init``): every line ok on a
good one; one clear line per broken piece, exit 1; nothing created where it reads."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from cli_run import free_port, maestro, workspace_env

from cli.doctor import check_champions, check_compiled, check_online_store, check_redis
from serving.settings import Settings

CHECKS = [
    "workspace",
    "feature registry",
    "online store",
    "redis",
    "champions",
    "log directories",
    "port",
    "compiled extensions",
]


def _lines(stdout: str) -> dict[str, str]:
    """``{check name: the rest of its line}``, one line per check, in order."""
    rows = [line.split(": ", 1) for line in stdout.splitlines()]
    assert [name for name, _ in rows] == CHECKS, stdout
    return dict(rows)


def test_a_good_workspace_is_all_ok(workspace) -> None:
    port = free_port()
    result = maestro(["doctor", "--port", str(port)], workspace.env)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    lines = _lines(result.stdout)
    assert all(rest.startswith("ok") for rest in lines.values()), result.stdout
    assert lines["port"] == f"ok (127.0.0.1:{port} free)"
    assert lines["champions"].startswith("ok (6 decision points")
    assert lines["compiled extensions"] == "ok (8 of 8 loaded)"
    assert result.stderr == ""


def test_a_broken_workspace_gets_one_line_per_problem(workspace, tmp_path) -> None:
    """The online store removed, the MLflow server dead, the serve port taken."""
    home = tmp_path / "ws"
    shutil.copytree(workspace.home, home)
    store = home / "feature_repo" / "data" / "online_store.db"
    for path in store.parent.glob("online_store.db*"):
        path.unlink()
    dead = free_port()  # nothing listens there
    env = {**workspace_env(home), "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{dead}"}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = maestro(["doctor", "--port", str(port)], env)
        seconds = time.monotonic() - started
    assert result.returncode == 1, result.stdout + result.stderr[-3000:]
    lines = _lines(result.stdout)
    assert lines["online store"] == f"no SQLite online store at {store}: run `maestro init` " \
        "(or set MAESTRO_HOME)"
    assert lines["champions"].startswith(
        f"cannot reach the MLflow server at http://127.0.0.1:{dead} (Connection refused)"
    )
    assert lines["port"].startswith(f"port {port} is in use on 127.0.0.1: stop what listens")
    broken = {"online store", "champions", "port"}
    assert all(lines[name].startswith("ok") for name in set(CHECKS) - broken), result.stdout
    assert seconds < 120  # no minutes of retries against the dead server
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("exists", [True, False], ids=["empty", "missing"])
def test_no_workspace_is_one_failing_line_and_nothing_created(tmp_path, exists) -> None:
    home = tmp_path / "home"
    if exists:
        home.mkdir()
    result = maestro(["doctor", "--port", str(free_port())], workspace_env(home))
    assert result.returncode == 1
    lines = _lines(result.stdout)
    assert lines["workspace"] == f"no workspace at {home}: run `maestro init` (or set MAESTRO_HOME)"
    failing = [n for n, rest in lines.items() if not rest.startswith(("ok", "skipped"))]
    assert failing == ["workspace"], result.stdout
    assert lines["champions"] == "skipped (no workspace)"
    assert (sorted(home.iterdir()) == []) if exists else not home.exists()
    assert result.stderr == ""


def test_a_missing_mlflow_database_is_reported_not_created(workspace, tmp_path) -> None:
    db = tmp_path / "nowhere" / "mlflow.db"
    settings = Settings(home=workspace.home, mlflow_tracking_uri=f"sqlite:///{db}")
    check = check_champions(settings)
    assert check.line() == f"champions: no MLflow store at {db}: run `maestro init` " \
        "(or fix MLFLOW_TRACKING_URI)"
    assert not db.parent.exists()


def _redis_repo(workspace, tmp_path: Path, port: int) -> Settings:
    """A copy of the workspace's Feast repo whose online store is Redis on ``port``."""
    home = tmp_path / "redis-ws"
    shutil.copytree(workspace.home / "feature_repo", home / "feature_repo")
    yaml_path = home / "feature_repo" / "feature_store.yaml"
    text = yaml_path.read_text().replace(
        "online_store:\n  type: sqlite\n  path: data/online_store.db\n",
        f'online_store:\n  type: redis\n  connection_string: "127.0.0.1:{port}"\n',
    )
    assert "type: redis" in text
    yaml_path.write_text(text)
    return Settings(home=home)


def test_redis_when_configured(workspace, monkeypatch, tmp_path) -> None:
    """``MAESTRO_ONLINE_STORE=redis://…``: a dead Redis is one line; a live one that is
    not the workspace's online store (SQLite here) is another. A workspace whose online
    store is Redis: its online-store line says whether Redis answers."""
    settings = Settings(home=workspace.home)
    dead = free_port()
    monkeypatch.setenv("MAESTRO_ONLINE_STORE", f"redis://127.0.0.1:{dead}")
    check = check_redis(settings)
    assert not check.ok
    assert check.problem.startswith(f"cannot reach Redis at 127.0.0.1:{dead} (")
    assert check.problem.endswith("start Redis or fix MAESTRO_ONLINE_STORE")
    store = check_online_store(_redis_repo(workspace, tmp_path / "dead", dead))
    assert store.problem is not None and store.problem.startswith(
        f"cannot reach Redis at 127.0.0.1:{dead} ("
    )
    assert store.problem.endswith("start Redis or fix online_store in feature_store.yaml")
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed: run `make test-deps`"
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir",
         str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        monkeypatch.setenv("MAESTRO_ONLINE_STORE", f"redis://127.0.0.1:{port}")
        deadline = time.monotonic() + 20
        while not (check := check_redis(settings)).problem or "cannot reach" in check.problem:
            assert time.monotonic() < deadline, check.line()
            time.sleep(0.2)
        assert check.problem == (
            f"MAESTRO_ONLINE_STORE is redis://127.0.0.1:{port} but the workspace's online "
            "store is sqlite: run `maestro init` to materialize into Redis"
        )
        live = check_online_store(_redis_repo(workspace, tmp_path / "live", port))
        assert live.line() == f"online store: ok (redis 127.0.0.1:{port})"
    finally:
        server.terminate()
        server.wait(timeout=10)
    monkeypatch.setenv("MAESTRO_ONLINE_STORE", "sqlite")
    assert check_redis(settings).line() == "redis: ok (not configured)"


def test_the_compiled_check_names_what_is_not_built() -> None:
    assert check_compiled().ok
    check = check_compiled(("policies._decide", "policies._not_built"))
    assert check.problem is not None
    assert check.problem.startswith("not built: policies._not_built (their Python twins run")


def test_help_lists_doctor_and_verbose(tmp_path) -> None:
    result = maestro(["--help"], workspace_env(tmp_path / "none"))
    assert result.returncode == 0
    assert "doctor " in result.stdout and "--verbose" in result.stdout
    assert not Path(tmp_path / "none").exists()
