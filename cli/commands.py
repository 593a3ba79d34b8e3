"""The commands of ``maestro``, each wiring the packages it needs (loaded by
:mod:`cli.main` when a command runs, so ``maestro --help`` loads none of them).

Every command exits 0 on success, 2 on bad usage and 1 on failure, with a one-line
error on stderr: a :class:`~core.errors.MaestroError` by its own ``exit_code``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
from pydantic import ValidationError

from cli import evaluate as ev
from cli import training as tc
from cli.features import apply_command, load_command, materialize_command
from cli.simulate import simulate_command
from cli.stages import stage_command
from cli.training import promote_command, train_command
from cli.workspace import init_command
from core.errors import EXIT_FAILURE, EXIT_USAGE, MaestroError
from policies.registry import POLICY_KINDS
from serving.engines.runner import print_serve_config
from serving.engines.runner import serve as run_serve
from serving.erasure import erase_everywhere
from serving.experiments.variants import report_command
from serving.settings import get_settings


def _fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    click.echo(f"maestro: error: {message}", err=True)
    sys.exit(code)


def _workspace() -> Any:
    """The settings of an existing workspace: a command that only reads one refuses an
    empty or missing ``MAESTRO_HOME`` (exit 2) instead of creating files in it."""
    settings = get_settings()
    home = settings.home
    if not home.is_dir() or not any(home.iterdir()):
        _fail(f"no workspace at {home}: run `maestro init` (or set MAESTRO_HOME)", EXIT_USAGE)
    return settings


def _policy_list(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> list[str] | None:
    if value is None:
        return None
    kinds = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [k for k in kinds if k not in POLICY_KINDS]
    if unknown or not kinds:
        raise click.BadParameter(
            f"unknown policy kind(s) {', '.join(unknown) or '(none)'}; "
            f"choose from {', '.join(POLICY_KINDS)}"
        )
    return kinds


def _settings_problem(exc: ValidationError) -> str:
    """One line naming each bad setting by its environment variable, and the problem."""
    problems = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "settings"
        variable = name if name.isupper() else f"MAESTRO_{name.upper()}"
        problems.append(f"{variable}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(problems)


def _run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a command body, turning errors into a one-line message and an exit code: a
    :class:`~core.errors.MaestroError` by its own ``exit_code``; another library's bad
    value is bad input (2), its I/O or runtime failure a failure (1)."""
    try:
        return fn(*args, **kwargs)
    except click.ClickException:
        raise
    except MaestroError as exc:
        _fail(exc.cli_message(), exc.exit_code)
    except ValidationError as exc:  # the settings, from the environment
        _fail(_settings_problem(exc), EXIT_USAGE)
    except ValueError as exc:
        _fail(str(exc), EXIT_USAGE)
    except (OSError, RuntimeError) as exc:
        _fail(str(exc), EXIT_FAILURE)
    except KeyboardInterrupt:
        _fail("interrupted", EXIT_FAILURE)
    except Exception as exc:  # a library failure: one line, never a bare traceback
        _fail(str(exc) or type(exc).__name__, EXIT_FAILURE)


@click.command()
@click.option("--customers", type=click.IntRange(1, 10_000_000), default=10_000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--example", default=None,
              help="Also write an example's source exports and features.yaml (retail-bank).")
def init(customers: int, seed: int, example: str | None) -> None:
    """Build the workspace under $MAESTRO_HOME: Feast repo, data, MLflow store, champions."""

    _run(init_command, get_settings(), customers, seed, example)


@click.command()
def apply() -> None:
    """Check $MAESTRO_HOME/features.yaml and apply its features and sources to Feast.

    Nothing is applied when the file has a problem: one line names the file, the line
    and the problem (exit 2)."""

    _run(apply_command, _workspace())


@click.command()
@click.argument("source")
@click.option("--reject-file", type=click.Path(dir_okay=False), default=None,
              help="Write every rejected row (with its reasons) here (.csv or .parquet).")
def load(source: str, reject_file: str | None) -> None:
    """Check and stage one batch of a declared source; report rejected rows.

    Wrong types, out-of-range values, duplicate keys, unknown customers and future
    timestamps are counted per reason with a sample of the rows, never dropped silently."""

    _run(load_command, _workspace(), source, reject_file)


@click.command()
@click.option("--every", default=None, help="Run on a schedule, e.g. 10m or 1h.")
def materialize(every: str | None) -> None:
    """Move what changed in the staged sources to the online store (incremental)."""

    _run(materialize_command, _workspace(), every)


@click.command()
@click.option("--engine", type=click.Choice(["ray", "uvicorn"]), default="ray", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--replicas", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option(
    "--address",
    default=None,
    help="Deploy into the existing Ray cluster at ADDR (host:port or auto; else RAY_ADDRESS).",
)
@click.option(
    "--print-config",
    is_flag=True,
    help="Print the Ray Serve config YAML (for `serve deploy`, KubeRay's serveConfigV2).",
)
def serve(
    engine: str, host: str, port: int, replicas: int, address: str | None, print_config: bool
) -> None:
    """Serve the HTTP API (Ray Serve by default; uvicorn runs the same app in one process)."""
    if print_config:
        click.echo(_run(print_serve_config, host, port, replicas), nl=False)
        return
    _run(run_serve, engine, host, port, replicas, address)


@click.command()
@click.option(
    "--policy",
    "policy_kind",
    type=click.Choice(list(POLICY_KINDS)),
    default="vw-cb",
    show_default=True,
)
@click.option(
    "--decision-point", default=None, help="Train one decision point (default: all with data)."
)
@click.option("--promote", is_flag=True, help="Move the champion alias when the gate passes.")
@click.option(
    "--staged", is_flag=True, help="With --promote: a passing candidate becomes the shadow."
)
@click.option("--every", default=None,
              help="Retrain on a schedule, e.g. 10m or 1h; a drift alarm retrains at once.")
@click.option(
    "--min-lift",
    type=click.FloatRange(min=0.0),
    default=0.0,
    show_default=True,
    help="Promote only when the 95% lower end of candidate − champion exceeds this.",
)
def train(
    policy_kind: str,
    decision_point: str | None,
    promote: bool,
    staged: bool,
    every: str | None,
    min_lift: float,
) -> None:
    """Train a candidate from logged decisions and rewards, evaluate it off-policy, register it."""

    if staged and not promote:
        _fail("--staged: only with --promote", EXIT_USAGE)
    _run(
        train_command, _workspace(), policy_kind, decision_point, promote, every, min_lift,
        staged=staged,
    )


@click.command()
@click.option("--policy", "policy_ref", default=None, help=ev.POLICY_HELP)
@click.option("--logs", type=click.Path(dir_okay=True), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print every estimate as JSON.")
def evaluate(policy_ref: str | None, logs: str | None, as_json: bool) -> None:
    """Off-policy evaluation (IPS, SNIPS, DM, DR) with 95% confidence intervals."""
    if policy_ref is None and logs is None:
        raise click.UsageError("give --policy, --logs FILE.parquet, or both")

    if policy_ref is None:
        text, warnings = _run(_evaluated, ev.evaluate_byo, True, Path(logs))
    else:
        logs_path = Path(logs) if logs else None
        text, warnings = _run(
            _evaluated, ev.evaluate_policy_ref, as_json, _workspace(), policy_ref, logs_path
        )
    click.echo(text)
    for warning in warnings:
        click.echo(f"maestro: warning: {warning}", err=True)


def _evaluated(
    body: Callable[..., dict[str, Any]], as_json: bool, *args: Any
) -> tuple[str, list[str]]:
    """An evaluation's text (its JSON, rendered here so that a value JSON cannot hold is
    an error line, not a traceback) and its warnings, one line each."""
    result = body(*args)
    try:
        text = tc.dumps(result) if as_json else ev.summary(result)
    except ValueError as exc:  # a non-finite figure: a defect, never bad input
        raise RuntimeError(f"evaluation produced a figure JSON cannot hold: {exc}") from exc
    return text, ev.warnings_of(result)


@click.command()
@click.option("--policies", callback=_policy_list, default="uniform,rules,vw-cb", show_default=True)
@click.option("--customers", type=click.IntRange(1, 10_000_000), default=1_000, show_default=True)
@click.option("--steps", type=click.IntRange(1, 100_000_000), default=10_000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default="simulation", show_default=True)
@click.option("--target", default=None, help="URL of a running Maestro to drive over HTTP.")
def simulate(
    policies: list[str], customers: int, steps: int, seed: int, out: str, target: str | None
) -> None:
    """Run the journey simulator and write report.json, report.html and plots."""

    _run(simulate_command, policies, customers, steps, seed, out, target)


@click.command()
@click.option("--decision-point", required=True)
@click.option("--version", "model_version", type=click.IntRange(1), default=None)
@click.option(
    "--stage",
    type=click.Choice(["shadow", "canary", "champion"]),
    default=None,
    help="Staged rollout: move the version to this stage (default version: the stage before's).",
)
@click.option(
    "--share",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=None,
    help="With --stage: the canary's (or the watched champion's baseline's) share.",
)
def promote(
    decision_point: str, model_version: int | None, stage: str | None, share: float | None
) -> None:
    """Move the champion alias of a decision point to a registered version (rollback).

    With --stage: move a version through shadow, canary and champion (staged rollout)."""

    if stage is not None:
        click.echo(_run(stage_command, _workspace(), decision_point, stage, model_version, share))
        return
    if model_version is None:
        _fail("--version: required without --stage", EXIT_USAGE)
    if share is not None:
        _fail("--share: only with --stage", EXIT_USAGE)
    click.echo(_run(promote_command, _workspace(), decision_point, model_version))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the JSON of GET /experiments.")
@click.option(
    "--mde",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Absolute effect to size samples for (default: 10% of the baseline's mean).",
)
def report(as_json: bool, mde: float | None) -> None:
    """Experiment results per decision point: variants, rewards, lift with intervals."""

    click.echo(_run(report_command, _workspace(), as_json, mde))


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="The host serve would use.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="The port serve would use.",
)
def doctor(host: str, port: int) -> None:
    """Check the workspace: one line per check, ok or what is wrong and how to fix it.

    Checks the workspace, the Feast registry and online store, Redis when configured, a
    champion per decision point in the MLflow registry, the log directories, the serve
    port and the compiled extensions; creates nothing. Exit 1 when a check fails."""
    from cli.doctor import check_conditions, run_checks

    settings = _run(get_settings)
    _run(check_conditions, settings)  # a bad condition: one line, exit 2
    failed = False
    for check in run_checks(settings, host, port):
        click.echo(check.line())
        failed = failed or not check.ok
    if failed:
        sys.exit(EXIT_FAILURE)


@click.group()
def segment() -> None:
    """Dynamic segments of $MAESTRO_HOME/triggers.yaml: export one as an audience."""


def _segment_export(name: str, out: Path | None) -> None:
    """Write segment NAME's customers (from the offline store) with the feature values
    that qualified them, as Parquet."""
    from cli.segments import export_segment

    click.echo(_run(export_segment, _workspace(), name, out))


# a subcommand of ``segment`` only (not a top-level command of this module)
segment.command("export")(
    click.argument("name")(
        click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="The Parquet file to write (default "
                     "$MAESTRO_HOME/segments/NAME.parquet).")(_segment_export)
    )
)


@click.command()
@click.argument("spool_dir", type=click.Path(file_okay=False, path_type=Path))
def recover(spool_dir: Path) -> None:
    """Roll a dead node's spool (SPOOL_DIR) into the workspace's logs, from any machine.

    SPOOL_DIR is the node's $MAESTRO_HOME/logs/spool (or one replica's spool in it);
    spools a live process still holds are left alone."""
    from serving.eventlog.recovery import recover_command

    click.echo(_run(recover_command, _workspace(), spool_dir))


@click.command()
@click.argument("customer_id")
def erase(customer_id: str) -> None:
    """Erase one customer everywhere (online store, offline data, logs, training sets).

    Erases what is on disk and writes an audit record under $MAESTRO_HOME/audit/; a
    running server's live spool is erased through its DELETE /customers/{id}."""
    import orjson


    record = _run(erase_everywhere, get_settings(), customer_id)
    click.echo(orjson.dumps(record).decode())


@click.group()
def deliveries() -> None:
    """Delivery of triggered decisions: list and re-queue the dead letters."""


def _deliveries_list(limit: int) -> None:
    """List the dead letters (oldest first) and the outbox's requests per state."""
    from cli.deliveries import list_dead_letters

    for line in _run(list_dead_letters, _workspace(), limit):
        click.echo(line)


def _deliveries_requeue(delivery_ids: tuple[str, ...], every: bool) -> None:
    """Make dead letters pending again (a running server sends them)."""
    from cli.deliveries import requeue_dead_letters

    click.echo(_run(requeue_dead_letters, _workspace(), delivery_ids, every))


deliveries.command("list")(
    click.option("--limit", type=click.IntRange(min=1), default=100,
                 help="At most this many dead letters.")(_deliveries_list)
)
deliveries.command("requeue")(
    click.argument("delivery_ids", nargs=-1)(
        click.option("--all", "every", is_flag=True, help="Every dead letter.")(
            _deliveries_requeue)
    )
)
