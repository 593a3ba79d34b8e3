"""The ``maestro`` command: the composition root, the only package that knows every other.

The group loads only click: each command lives in :mod:`cli.commands` (which imports
the packages the commands wire together) and is loaded when it runs, while
``maestro --help`` lists the commands from :data:`COMMANDS`, so it answers at once.
Heavy libraries (feast, ray, mlflow, torch) are imported only by the functions that use
them.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import click

#: every command and the first paragraph of its help (what ``maestro --help`` shows);
#: ``tests/policies/test_cli_front_door.py`` checks it against :mod:`cli.commands`
COMMANDS: Mapping[str, str] = {
    "init": "Build the workspace under $MAESTRO_HOME: Feast repo, data, MLflow store, "
    "champions.",
    "serve": "Serve the HTTP API (Ray Serve by default; uvicorn runs the same app in one "
    "process).",
    "train": "Train a candidate from logged decisions and rewards, evaluate it off-policy, "
    "register it.",
    "evaluate": "Off-policy evaluation (IPS, SNIPS, DM, DR) with 95% confidence intervals.",
    "simulate": "Run the journey simulator and write report.json, report.html and plots.",
    "promote": "Move the champion alias of a decision point to a registered version "
    "(rollback).",
    "report": "Experiment results per decision point: variants, rewards, lift with "
    "intervals.",
    "recover": "Roll a dead node's spool (SPOOL_DIR) into the workspace's logs, from any "
    "machine.",
    "apply": "Check $MAESTRO_HOME/features.yaml and apply its features and sources to "
    "Feast.",
    "load": "Check and stage one batch of a declared source; report rejected rows.",
    "materialize": "Move what changed in the staged sources to the online store "
    "(incremental).",
    "erase": "Erase one customer everywhere (online store, offline data, logs, training "
    "sets).",
    "doctor": "Check the workspace: one line per check, ok or what is wrong and how to fix it.",
    "segment": "Dynamic segments of $MAESTRO_HOME/triggers.yaml: export one as an audience.",
    "deliveries": "Delivery of triggered decisions: list and re-queue the dead letters.",
}
COMMANDS_MODULE = "cli.commands"


class LazyGroup(click.Group):
    """A group whose commands (``commands``: name → its help's first paragraph) are
    attributes of ``module``, imported on the first command looked up; its help lists
    them without importing it."""

    def __init__(self, *args: Any, commands: Mapping[str, str], module: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lazy, self.module = dict(commands), module

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.lazy)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy:
            return None
        command = getattr(importlib.import_module(self.module), cmd_name)
        assert isinstance(command, click.Command), cmd_name
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands section, as click writes it, from the table."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(n, click.Command(n, help=self.lazy[n]).get_short_help_str(limit)) for n in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    commands=COMMANDS,
    module=COMMANDS_MODULE,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="maestro-nba", prog_name="maestro")
@click.option(
    "--verbose",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=lambda ctx, _param, value: _route_output(ctx, value),
    help="Also show the libraries' log lines and warnings (always in $MAESTRO_HOME/maestro.log).",
)
def cli() -> None:
    """Maestro: real-time next-best-action decisions with contextual bandits."""


def _route_output(ctx: click.Context, verbose: bool) -> None:
    """Before the command is even loaded: log records and warnings to the log file, and
    to the terminal only Maestro's own (all of them with ``--verbose``); undone when the
    command ends (:mod:`cli.output`)."""
    from cli.output import route

    ctx.call_on_close(route(verbose).undo)


def _quiet_libraries() -> None:
    """No telemetry and no progress bars from the libraries (their log lines and warnings
    are routed by :mod:`cli.output`)."""
    import os

    for name, value in (
        ("FEAST_USAGE", "False"),
        ("RAY_USAGE_STATS_ENABLED", "0"),
        ("MLFLOW_ENABLE_TELEMETRY", "false"),
        ("DO_NOT_TRACK", "1"),
        ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false"),
    ):
        os.environ.setdefault(name, value)


def main() -> None:
    _quiet_libraries()
    cli(prog_name="maestro")


if __name__ == "__main__":
    main()
