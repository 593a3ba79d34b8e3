"""Body of ``maestro doctor``: is this workspace ready to serve and train?

Each check returns one :class:`Check`, printed as one line: ``<name>: ok (<what was
found>)`` or ``<name>: <what is wrong>: <how to fix it>``. The doctor only reads: it
never creates a file (an empty workspace stays empty, a missing SQLite file is not
made by opening it), and it does not wait on a dead service (Redis and the MLflow
server are probed with short timeouts and no retries). Feast and MLflow are imported
only by the checks that need them.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core.compiled import EXTENSIONS, compiled_module
from core.errors import MaestroError
from serving.settings import Settings

INIT = "run `maestro init` (or set MAESTRO_HOME)"
#: seconds a probe of Redis or the MLflow server may take
PROBE_SECONDS = 3.0


@dataclass(frozen=True)
class Check:
    """One line of the report: ``problem`` is ``None`` when the check passed."""

    name: str
    problem: str | None = None
    found: str = ""
    skipped: bool = False

    @property
    def ok(self) -> bool:
        return self.problem is None

    def line(self) -> str:
        if self.problem is not None:
            return f"{self.name}: {self.problem}"
        if self.skipped:
            return f"{self.name}: skipped ({self.found})"
        return f"{self.name}: ok" + (f" ({self.found})" if self.found else "")


def has_workspace(settings: Settings) -> bool:
    home = settings.home
    return home.is_dir() and any(home.iterdir())


def check_workspace(settings: Settings) -> Check:
    if has_workspace(settings):
        return Check("workspace", found=str(settings.home))
    return Check("workspace", f"no workspace at {settings.home}: {INIT}")


def _repo_config(settings: Settings) -> dict[str, Any] | str:
    """The workspace's ``feature_store.yaml``, or what is wrong with it."""
    import yaml

    path = settings.feature_repo / "feature_store.yaml"
    if not path.is_file():
        return f"no Feast repo at {settings.feature_repo}: {INIT}"
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        return f"cannot read {path} ({_first_line(exc)}): fix it or {INIT}"
    if not isinstance(config, dict) or "online_store" not in config:
        return f"{path} is not a Feast repo configuration: fix it or {INIT}"
    return config


def check_registry(settings: Settings) -> Check:
    """The Feast repo is applied: its registry exists and Feast reads Maestro's views."""
    config = _repo_config(settings)
    if isinstance(config, str):
        return Check("feature registry", config)
    registry = config.get("registry", "data/registry.db")
    relative = registry.get("path") if isinstance(registry, dict) else registry
    path = settings.feature_repo / str(relative)
    if not path.is_file():
        return Check("feature registry", f"no registry at {path}: the repo is not applied: {INIT}")
    try:
        from feast import FeatureStore

        from features.feast.views import all_views, silence_feast_warnings

        silence_feast_warnings()
        views = all_views(FeatureStore(repo_path=str(settings.feature_repo)))
    except Exception as exc:  # Feast's many ways of failing to read a registry
        return Check("feature registry", f"cannot read {path} ({_first_line(exc)}): {INIT}")
    if not views:
        return Check("feature registry", f"{path} holds none of Maestro's views: {INIT}")
    return Check("feature registry", found=f"{len(views)} feature views in {path}")


def check_online_store(settings: Settings) -> Check:
    """The online store the workspace's repo names answers: the SQLite file with its
    tables (opened read-only), or Redis (a ``PING``)."""
    config = _repo_config(settings)
    if isinstance(config, str):
        return Check("online store", config)
    store = config["online_store"] or {}
    kind = store.get("type", "sqlite") if isinstance(store, dict) else str(store)
    if kind == "redis":
        address = str(store.get("connection_string", "127.0.0.1:6379"))
        problem = _redis_problem(address)
        fix = "start Redis or fix online_store in feature_store.yaml"
        if problem:
            return Check("online store", f"{problem}: {fix}")
        return Check("online store", found=f"redis {address.split(',')[0]}")
    if kind != "sqlite":
        return Check("online store", found=f"{kind}: not checked by maestro doctor")
    path = settings.feature_repo / str(store.get("path", "data/online_store.db"))
    if not path.is_file():
        return Check("online store", f"no SQLite online store at {path}: {INIT}")
    import sqlite3

    try:
        with sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True) as conn:
            query = "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
            tables = conn.execute(query).fetchone()[0]
    except sqlite3.Error as exc:
        return Check("online store", f"cannot read {path} ({exc}): {INIT}")
    if tables == 0:
        return Check("online store", f"{path} has no tables: nothing materialized: {INIT}")
    return Check("online store", found=f"sqlite {path}, {tables} tables")


def _redis_problem(address: str) -> str | None:
    """``None`` when Redis at ``address`` (Feast's ``host:port[,options]``) answers."""
    from features.feast.redis_backend import redis_client

    try:
        redis_client(address, PROBE_SECONDS).ping()
    except Exception as exc:  # refused, timed out, refused our password
        return f"cannot reach Redis at {address.split(',')[0]} ({_first_line(exc)})"
    return None


def check_redis(settings: Settings) -> Check:
    """``MAESTRO_ONLINE_STORE`` (what ``maestro init`` materializes into): when it names
    Redis, that Redis answers and is the workspace's online store."""
    wanted = os.environ.get("MAESTRO_ONLINE_STORE", "").strip()
    if not wanted or wanted == "sqlite":
        return Check("redis", found="not configured")
    if not wanted.startswith("redis://"):
        return Check(
            "redis", f"MAESTRO_ONLINE_STORE={wanted!r}: use sqlite or redis://HOST:PORT[/DB]"
        )
    from features.workspace import online_store_config

    try:
        address = online_store_config(wanted)["connection_string"]
    except MaestroError as exc:
        return Check("redis", f"{exc}: fix MAESTRO_ONLINE_STORE")
    problem = _redis_problem(address)
    if problem:
        return Check("redis", f"{problem}: start Redis or fix MAESTRO_ONLINE_STORE")
    config = _repo_config(settings) if has_workspace(settings) else {}
    store = config.get("online_store") if isinstance(config, dict) else None
    if isinstance(store, dict) and store.get("type") != "redis":
        return Check(
            "redis",
            f"MAESTRO_ONLINE_STORE is {wanted} but the workspace's online store is "
            f"{store.get('type')}: run `maestro init` to materialize into Redis",
        )
    return Check("redis", found=f"{address} answers")


def check_champions(settings: Settings) -> Check:
    """Every decision point of the catalog has a ``champion`` in the MLflow registry."""
    uri = settings.tracking_uri
    shown = _without_password(uri)
    fix = "run `maestro init` (or fix MLFLOW_TRACKING_URI)"
    unreachable = _store_problem(uri)
    if unreachable:
        return Check("champions", f"{unreachable}: {fix}")
    if uri.startswith(("http://", "https://")):  # a server that answers slowly: no retries
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(PROBE_SECONDS)))
    try:
        from policies.catalog import load_catalog
        from training.tracking import champion_version, client

        names = load_catalog(settings.catalog_file).names()
        registry = client(uri)
        missing = [n for n in names if champion_version(n, uri, registry) is None]
    except Exception as exc:  # a store MLflow cannot read: wrong schema, refused, denied
        return Check("champions", f"cannot read the MLflow registry at {shown} "
                     f"({_first_line(exc)}): {fix}")
    if missing:
        return Check(
            "champions",
            f"no champion for {', '.join(missing)} in {shown}: run `maestro init` "
            "(or `maestro promote`)",
        )
    return Check("champions", found=f"{len(names)} decision points in {shown}")


def _store_problem(uri: str) -> str | None:
    """What keeps MLflow from reading ``uri`` at all, found without MLflow (which would
    create a missing SQLite file, or retry a dead server for minutes)."""
    parts = urlsplit(uri)
    if parts.scheme == "sqlite":
        path = Path(uri.removeprefix("sqlite:///"))
        return None if path.is_file() else f"no MLflow store at {path}"
    if parts.scheme in {"http", "https"}:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            socket.create_connection((parts.hostname or "", port), PROBE_SECONDS).close()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            return f"cannot reach the MLflow server at {_without_password(uri)} ({reason})"
    return None


def _without_password(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    return parts._replace(netloc=f"{parts.username}:***@{parts.hostname}:{parts.port}").geturl()


def check_log_dirs(settings: Settings) -> Check:
    """The workspace and its log directories can be written by this user (where a
    directory does not exist yet, the one it will be made in)."""
    dirs = [settings.home, settings.logs_dir]
    if settings.logs_dir.is_dir():
        dirs += sorted(p for p in settings.logs_dir.iterdir() if p.is_dir())
    blocked = [str(d) for d in dirs if not os.access(_existing(d), os.W_OK | os.X_OK)]
    if blocked:
        return Check(
            "log directories",
            f"cannot write {', '.join(blocked)}: give the user running maestro write access",
        )
    return Check("log directories", found=f"{len(dirs)} writable under {settings.home}")


def _existing(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def check_port(host: str, port: int) -> Check:
    from serving.engines.runner import ensure_port_free

    try:
        ensure_port_free(host, port)
    except MaestroError as exc:
        return Check("port", f"{exc}: stop what listens there or use `maestro serve --port`")
    except OSError as exc:
        return Check("port", f"cannot listen on {host}:{port} ({exc.strerror or exc})")
    return Check("port", found=f"{host}:{port} free")


def check_compiled(extensions: tuple[str, ...] = EXTENSIONS) -> Check:
    """Every compiled hot loop is built and imports (else its Python twin runs, slower)."""
    missing, broken = [], []
    for name in extensions:
        try:
            if compiled_module(name) is None:
                missing.append(name)
        except ImportError as exc:
            broken.append(f"{name} ({_first_line(exc)})")
    rebuild = "reinstall with a C compiler (or `python setup.py build_ext --inplace`)"
    if broken:
        return Check("compiled extensions", f"built but not importable: {', '.join(broken)}: "
                     f"{rebuild}")
    if missing:
        return Check("compiled extensions", f"not built: {', '.join(missing)} (their Python "
                     f"twins run, slower): {rebuild}")
    return Check("compiled extensions", found=f"{len(extensions)} of {len(extensions)} loaded")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def check_conditions(settings: Settings) -> None:
    """Load the catalog's and ``triggers.yaml``'s conditions and triggers as ``maestro
    serve`` does: a bad one raises its one-line ``file:line: problem`` (exit 2) before any
    check runs.
    Other problems (an unreadable catalog, a bad ``features.yaml``) are left to the checks
    that report them."""
    from policies.conditions import ConditionError
    from serving.factory import delivery_destinations, workspace_triggers

    delivery_destinations(settings)  # destinations: of triggers.yaml, their secrets set
    try:
        workspace_triggers(settings)  # the catalog's and the segments' too
    except ConditionError:
        raise
    except Exception:
        return


def run_checks(settings: Settings, host: str, port: int) -> Iterator[Check]:
    """Every check, in order. Without a workspace, the checks of what lives in it are
    skipped (the workspace line already says what to do): the Feast repo, the log
    directories, and the champions when the MLflow store is the workspace's own."""
    workspace = check_workspace(settings)
    yield workspace
    in_workspace: list[tuple[str, Callable[[Settings], Check]]] = [
        ("feature registry", check_registry),
        ("online store", check_online_store),
        ("redis", check_redis),
        ("champions", check_champions),
        ("log directories", check_log_dirs),
    ]
    for name, check in in_workspace:
        needs_workspace = name not in {"redis", "champions"} or (
            name == "champions" and settings.mlflow_tracking_uri is None
        )
        if workspace.ok or not needs_workspace:
            yield check(settings)
        else:
            yield Check(name, found="no workspace", skipped=True)
    yield check_port(host, port)
    yield check_compiled()
