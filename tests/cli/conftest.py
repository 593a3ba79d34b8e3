"""One real workspace for the command-line tests, built once by the command itself:
``maestro init --customers 200`` and ``maestro train`` on synthetic logs, in
subprocesses whose output the tests then read."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_run import maestro, workspace_env


@dataclass(frozen=True)
class Workspace:
    """The workspace, its environment, and what building it printed."""

    home: Path
    env: dict[str, str]
    init: subprocess.CompletedProcess
    train: subprocess.CompletedProcess


@pytest.fixture(scope="package")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    from policies.catalog import load_catalog
    from policies.registry import make_policy
    from training.synthetic_logs import write_synthetic_logs

    home = tmp_path_factory.mktemp("cli") / "ws"
    env = workspace_env(home)
    init = maestro(["init", "--customers", "200"], env)
    assert init.returncode == 0, init.stderr[-3000:]
    write_synthetic_logs(home / "logs", load_catalog(), make_policy("uniform"), 600)
    train = maestro(["train", "--policy", "linucb"], env)
    assert train.returncode == 0, train.stderr[-3000:]
    return Workspace(home, env, init, train)
