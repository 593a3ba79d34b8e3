"""The `maestro` command's front door: help, exit codes, and a light start."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from cli.main import cli

COMMANDS = [
    "init", "serve", "train", "evaluate", "simulate", "promote", "report", "erase", "doctor"
]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_contract_command_answers_help(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--policy", "thompson"],
        ["simulate", "--policies", "uniform,nope"],
        ["evaluate", "--policy", "x", "--bogus"],
    ],
)
def test_unknown_policy_or_option_exits_2(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys; from cli.main import cli\n"
        "try:\n    cli(['--help'], prog_name='maestro')\nexcept SystemExit:\n    pass\n"
        "names = ('torch', 'feast', 'ray', 'mlflow', 'vowpal_wabbit_next', 'pandas')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "HEAVY []" in out


def test_the_help_table_is_every_command_with_its_own_help() -> None:
    """``maestro --help`` lists the commands from ``cli.main.COMMANDS`` without loading
    them: the table names every command of ``cli.commands`` and its help's first paragraph."""
    import click

    from cli import commands
    from cli.main import COMMANDS

    loaded = {n: c for n, c in vars(commands).items() if isinstance(c, click.Command)}
    assert set(loaded) == set(COMMANDS)
    for name, command in loaded.items():
        assert command.name == name
        assert " ".join((command.help or "").split("\n\n")[0].split()) == COMMANDS[name]


def test_help_loads_no_command() -> None:
    code = (
        "import sys; from cli.main import cli\n"
        "try:\n    cli(['--help'], prog_name='maestro')\nexcept SystemExit:\n    pass\n"
        "print('LOADED', [m for m in ('cli.commands', 'serving', 'training') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "LOADED []" in out


@pytest.mark.parametrize(
    "args",
    [
        ["promote", "--decision-point", "cart_abandoned", "--version", "1"],
        ["evaluate", "--policy", "champion"],
        ["report"],
        ["train"],
    ],
    ids=lambda a: a[0],
)
def test_read_only_commands_refuse_an_empty_workspace(args, tmp_path, monkeypatch) -> None:
    from cli.main import cli
    from serving.settings import get_settings

    home = tmp_path / "empty"
    home.mkdir()
    monkeypatch.setenv("MAESTRO_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, args)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert f"no workspace at {home}" in result.output
    assert not any(home.iterdir())  # nothing created: no mlflow.db
