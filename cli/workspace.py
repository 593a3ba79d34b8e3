"""Body of ``maestro init``: the workspace under ``$MAESTRO_HOME``.

Imported by :mod:`cli.commands`, loaded only when a command runs.
"""

from __future__ import annotations

import os
import sys

import click

from cli.training import init_champions
from features.examples import write_example
from features.workspace import init_feature_workspace
from serving.settings import Settings

#: the variable Feast's configuration names for the SQL registry (``MAESTRO_FEAST_REGISTRY_URL``)
REGISTRY_ENV = "MAESTRO_FEAST_REGISTRY_URL"


def init_command(
    settings: Settings, customers: int, seed: int, example: str | None = None
) -> None:
    """Build (idempotently) the Feast repo and its data, then the MLflow store and a
    cold-start champion per decision point; print one line for each half (and one for
    the example, when ``example`` names one: its exports and ``features.yaml`` first,
    so the Feast repo is built with its views).

    ``MAESTRO_ONLINE_STORE`` picks the online store: ``sqlite`` or ``redis://HOST:PORT``
    (unset: keep the repo's config)."""
    if example is not None:
        written = write_example(example, settings.home, customers, seed)
        click.echo(
            f"example {example}: {len(written) - 1} source exports in "
            f"{settings.home / 'exports'} and features.yaml; next: maestro apply, "
            "maestro load <source> (crm first), maestro materialize"
        )
    summary = init_feature_workspace(
        settings.home,
        customers=customers,
        seed=seed,
        progress=sys.stderr.isatty(),
        online_store=os.environ.get("MAESTRO_ONLINE_STORE") or None,
        registry_env=None if settings.feast_registry_url is None else REGISTRY_ENV,
    )
    click.echo(
        f"feature store: {summary.customers} customers (seed {summary.seed}) in "
        f"{summary.repo_path} [{summary.online_store}]; "
        f"{'generated' if summary.generated else 'data unchanged'}, "
        f"{'materialized' if summary.materialized else 'already materialized'}"
    )
    click.echo(init_champions(settings))
