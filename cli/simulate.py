"""Body of ``maestro simulate``: run the journey simulator (in process, or against a
running Maestro with ``--target``) and print one line per policy.

Imported by :mod:`cli.commands`, which ``cli.main`` loads only when a command runs.
"""

from __future__ import annotations

import os

import click

from simulator.session import simulate


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
    )
    for kind, s in report["policies"].items():
        click.echo(
            f"{kind}: mean reward {s['mean_reward']:.4f}, "
            f"cumulative regret {s['regret']:.1f}, optimal {s['optimal_rate']:.1%}"
        )
    click.echo(f"report: {os.path.join(out, 'report.html')}")
