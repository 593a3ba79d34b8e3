"""Bodies of ``maestro train``, ``maestro promote`` and the champions of ``maestro init``.

The CLI edge: reads settings once, calls :mod:`training`, prints results. Errors are
raised as exceptions and turned into one-line messages and exit codes by ``cli.main``.
"""

from __future__ import annotations

import json
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import click

from cli.errors import CommandError
from cli.stages import stage_shadows
from policies.catalog import DEFAULT_CATALOG, Catalog, load_catalog
from policies.registry import load_policy
from serving.service.policy_store import ensure_cold_start_champions
from serving.settings import Settings
from training import tracking
from training.train import TrainConfig, run_training

_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")



def parse_every(text: str) -> float:
    """``"10m"`` → 600.0 seconds (s, m, h, d; bare numbers are seconds)."""
    match = _EVERY.match(text)
    if not match:
        raise CommandError(f"--every: expected a duration like 30s, 10m or 1h, got {text!r}")
    seconds = (
        float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    )
    if seconds < 1:
        raise CommandError("--every: the interval must be at least 1s")
    return seconds


def _progress(total: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="ev", disable=not sys.stderr.isatty(), leave=False)


def activation_reader(settings: Settings, catalog: Catalog) -> Any:
    """The contact store's activated-event lookup when a decision point needs activation
    (its never-activated decisions are not learned from), else None."""
    if not any(p.activation == "required" for p in catalog.decision_points.values()):
        return None
    from serving.factory import contact_store

    return contact_store(settings, catalog).activated


def train_once(
    settings: Settings,
    kind: str,
    decision_point: str | None,
    promote: bool,
    min_lift: float = 0.0,
    staged: bool = False,
) -> int:
    catalog = load_catalog(settings.catalog_file)
    if decision_point is not None:
        catalog[decision_point]  # raises UnknownDecisionPointError with the known names
    results = run_training(
        settings.log_location,
        catalog,
        settings.tracking_uri,
        TrainConfig(
            kind=kind,
            promote=promote and not staged,  # staged: the shadow alias moves, not the champion
            reward_mode=settings.reward_mode,
            min_lift=min_lift,
        ),
        decision_point=decision_point,
        progress_factory=_progress,
        activated=activation_reader(settings, catalog),
    )
    if not results:
        raise CommandError("no decision point has enough logged data to train on")
    passed = {r.decision_point: r.version for r in results if r.verdict.passed}
    for r in results:
        action = (
            "promoted to champion" if r.promoted else ("not promoted" if promote else "registered")
        )
        if staged and r.decision_point in passed:
            action = "staged as shadow"
        click.echo(
            f"{r.decision_point}: run {r.run_id} version {r.version} ({r.kind}; OPE table on "
            f"{r.n_train} train / {r.n_holdout} held-out; gate on {r.verdict.n} events) "
            f"gate {r.verdict.summary()} — {action}"
        )
    if staged:
        for line in stage_shadows(settings, passed):
            click.echo(line)
    return len(results)


def train_command(
    settings: Settings,
    kind: str,
    decision_point: str | None,
    promote: bool,
    every: str | None,
    min_lift: float = 0.0,
    *,
    staged: bool = False,
) -> None:
    if every is None:
        train_once(settings, kind, decision_point, promote, min_lift, staged)
        return
    from cli.drift import AlarmWatch

    watch = AlarmWatch(settings.home, settings.tracking_uri, decision_point)
    repeat_every(parse_every(every), "train", lambda: train_once(
        settings, kind, decision_point, promote, min_lift, staged), wake=watch)


def repeat_every(
    interval: float, name: str, once: Callable[[], object],
    wake: Callable[[], bool] | None = None, poll: float = 2.0,
) -> None:  # fmt: skip
    """Run ``once`` every ``interval`` seconds until SIGINT/SIGTERM (continuous mode of
    ``train`` and ``materialize``); a run's bad input or lack of data is said on stderr
    and the next run is tried. ``wake``, asked every ``poll`` seconds between runs, starts
    the next run early when it answers True (``train``: a drift alarm)."""
    stop = threading.Event()

    def request_stop(_signum: int, _frame: object) -> None:
        # a signal landing inside MLflow's database code can surface in a garbage
        # collector callback as an unraisable traceback: stop between runs instead
        if stop.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: abort the run in progress
        stop.set()
        click.echo(
            f"maestro: {name}: stopping after the current run (Ctrl-C again aborts it)",
            err=True,
        )

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.is_set():
            started = time.monotonic()
            try:
                once()
            except ValueError as exc:  # bad input or too little data: say so, retry next run
                click.echo(f"maestro: {name}: {exc}", err=True)
            _wait(stop, started + interval, wake, poll)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _wait(
    stop: threading.Event, until: float, wake: Callable[[], bool] | None, poll: float
) -> None:
    """Sleep until the monotonic time ``until``, a stop, or ``wake()`` says True."""
    while not stop.is_set() and (left := until - time.monotonic()) > 0:
        if wake is not None and wake():
            return
        stop.wait(left if wake is None else min(left, poll))


def promote_command(settings: Settings, decision_point: str, version: int) -> str:
    """Move the champion alias after checking the version exists and its policy loads."""
    load_catalog(settings.catalog_file)[decision_point]
    try:
        data = tracking.load_version_bytes(decision_point, str(version), settings.tracking_uri)
    except Exception as exc:
        raise CommandError(
            f"no loadable version {version} of {tracking.model_name(decision_point)}: {exc}"
        ) from exc
    load_policy(data)  # a corrupt artefact raises ModelLoadError: the alias does not move
    tracking.set_champion(decision_point, version, settings.tracking_uri)
    return f"{decision_point}: champion -> version {version}"


def init_champions(settings: Settings) -> str:
    """``maestro init``'s second half: the workspace's own copy of the catalog, the MLflow
    store, and a cold-start champion for every decision point that has none (idempotent)."""
    import shutil
    from importlib import resources

    target = settings.home / "catalog.yaml"
    if not target.exists() and settings.catalog_path is None:
        settings.home.mkdir(parents=True, exist_ok=True)
        with resources.as_file(resources.files("policies").joinpath(DEFAULT_CATALOG)) as src:
            shutil.copyfile(src, target)
    catalog = load_catalog(settings.catalog_path or target)
    registered = ensure_cold_start_champions(
        catalog, settings.tracking_uri, settings.cold_start_kind
    )
    if registered:
        points = ", ".join(f"{dp} v{v}" for dp, v in sorted(registered.items()))
        return f"champions: cold-start {settings.cold_start_kind} registered for {points}"
    return f"champions: every decision point already has one ({settings.tracking_uri})"


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, allow_nan=False, default=float)
