"""Bodies of ``maestro apply``, ``maestro load`` and ``maestro materialize``: the
workspace's declared features and sources (``$MAESTRO_HOME/features.yaml``) → Feast.

Imported by :mod:`cli.commands`, loaded only when a command runs.
"""

from __future__ import annotations

from pathlib import Path

import click

from cli.training import parse_every, repeat_every
from features.apply import apply_workspace
from features.declared import load_declaration, workspace_declaration_path
from features.errors import WorkspaceError
from features.materialize import materialize_sources
from features.staging import load_source
from serving.settings import Settings


def _declaration(settings: Settings):  # type: ignore[no-untyped-def]
    path = workspace_declaration_path(settings.home)
    if not path.exists():
        raise WorkspaceError(f"no {path}: run `maestro init`")
    return load_declaration(path, settings.home)


#: what ``maestro apply`` says after applying: a running server read the declared views when
#: it started (its feature source plans its reads once) and does not reload them
RESTART_NOTE = (
    "running servers keep the features they started with: restart `maestro serve` "
    "to serve this declaration"
)


def apply_command(settings: Settings) -> None:
    """Check ``features.yaml`` whole, then apply it to the workspace's Feast repo."""
    click.echo(apply_workspace(settings.home).line())
    click.echo(RESTART_NOTE)


def load_command(settings: Settings, source: str, reject_file: str | None) -> None:
    """Check and stage one batch of a declared source; print the report (rejected rows
    counted per reason, with a sample; all of them in ``reject_file``)."""
    report = load_source(
        settings.home,
        _declaration(settings),
        source,
        Path(reject_file) if reject_file else None,
    )
    for line in report.lines():
        click.echo(line)


def materialize_command(settings: Settings, every: str | None) -> None:
    """Move what changed in the staged sources to the online store (once, or on a
    schedule with ``every``)."""

    def once() -> None:
        for count in materialize_sources(settings.home, _declaration(settings)):
            click.echo(count.line())

    if every is None:
        once()
    else:
        repeat_every(parse_every(every), "materialize", once)
