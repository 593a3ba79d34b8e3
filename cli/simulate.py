"""Body of ``maestro simulate``: run the journey simulator (in process, or against a
running Maestro with ``--target``) and print one line per policy.

Imported by :mod:`cli.commands`, which ``cli.main`` loads only when a command runs.
"""

from __future__ import annotations

import os

import click

from features.declared import workspace_declaration
from serving.settings import get_settings
from simulator.hidden_effects import FILE_NAME, CustomFeature, load_custom_features
from simulator.session import simulate


def workspace_custom_features() -> tuple[CustomFeature, ...]:
    """``$MAESTRO_HOME/simulation.yaml``'s custom features, each checked against the
    workspace's ``features.yaml``; none when the file does not exist."""
    home = get_settings().home
    path = home / FILE_NAME
    if not path.exists():
        return ()
    return load_custom_features(path, workspace_declaration(home))


def simulate_command(
    policies: list[str], customers: int, steps: int, seed: int, out: str, target: str | None
) -> None:
    """Simulate, write the report under ``out`` and print each policy's summary. Against a
    target, the first key of ``MAESTRO_API_KEY`` authenticates the requests."""
    api_key = (os.environ.get("MAESTRO_API_KEY") or "").split(",")[0].strip() or None
    report = simulate(
        policies,
        customers,
        steps,
        seed,
        out,
        target=target,
        api_key=api_key,
        custom_features=workspace_custom_features(),
    )
    for kind, s in report["policies"].items():
        click.echo(
            f"{kind}: mean reward {s['mean_reward']:.4f}, "
            f"cumulative regret {s['regret']:.1f}, optimal {s['optimal_rate']:.1%}"
        )
    click.echo(f"report: {os.path.join(out, 'report.html')}")
