"""Settings read at the edge, the workspace secret, and `maestro serve`'s start-up errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from serving.settings import Settings, get_settings, workspace_secret

ROOT = Path(__file__).resolve().parents[2]


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MAESTRO_HOME", str(tmp_path))
    monkeypatch.setenv("MAESTRO_API_KEY", " k1 , k2,,")
    monkeypatch.setenv("MAESTRO_KILL_SWITCH", "true")
    monkeypatch.setenv("MAESTRO_TIME_BUDGET_MS", "20")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    s = Settings()
    assert s.home == tmp_path and s.api_keys == {"k1", "k2"}
    assert s.kill_switch is True and s.time_budget_ms == 20
    assert s.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert "k1" not in repr(s)  # keys never appear in a log line of the settings
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere/m.db")
    assert Settings().tracking_uri == "sqlite:////elsewhere/m.db"
    get_settings.cache_clear()
    assert get_settings() is get_settings()
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAESTRO_TIME_BUDGET_MS", "0"),
        ("MAESTRO_FLUSH_MS", "500"),
        ("MAESTRO_REWARD_MODE", "max"),
        ("MAESTRO_POLL_SECONDS", "60"),
    ],
)
def test_bad_settings_fail_loudly(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name.removeprefix("MAESTRO_").lower()):
        Settings()


def test_workspace_secret_is_created_once(tmp_path: Path) -> None:
    first = workspace_secret(tmp_path)
    assert len(first) == 64 and workspace_secret(tmp_path) == first
    assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600


def test_serve_without_a_workspace_is_a_one_line_error(tmp_path: Path) -> None:
    env = {**os.environ, "MAESTRO_HOME": str(tmp_path / "nothing-here")}
    env.pop("MAESTRO_FEATURE_SOURCE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", "serve", "--engine", "uvicorn", "--port", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "maestro init" in proc.stderr
    assert "Traceback" not in proc.stderr
