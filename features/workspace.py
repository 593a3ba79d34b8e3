"""Lay out and load the Feast repository of a Maestro workspace (the features part of
``maestro init``).

``$MAESTRO_HOME/feature_repo`` holds ``feature_store.yaml`` (written once, so an operator
can switch the online store to Redis by editing it), ``definitions.py`` (copied from
:mod:`features.repo`) and ``data/`` (the offline Parquet, the registry and the SQLite
online store). A manifest (``data/maestro_manifest.json``) records what was generated
and where it was materialised, which makes :func:`init_feature_workspace` idempotent:
a second run with the same arguments regenerates nothing and materialises nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from features.agent_roster import (
    AGENT_GENERATOR,
    DEFAULT_AGENTS,
    agents_parquet,
    clear_agent_rows,
    write_agents_parquet,
)
from features.declared import workspace_declaration
from features.errors import WorkspaceError
from features.feast.internals import clear_online_views, enable_wal
from features.feast.views import all_views
from features.staged_files import ensure_declaration, ensure_staged
from features.synthetic import generate_customers

if TYPE_CHECKING:
    from feast import FeatureStore

_TEMPLATE_DIR = Path(__file__).resolve().parent / "repo"
MANIFEST = "maestro_manifest.json"
GENERATOR = "features.synthetic.generate_customers/v1"
SQLITE_ONLINE_STORE = {"type": "sqlite", "path": "data/online_store.db"}


@dataclass(frozen=True)
class WorkspaceSummary:
    """What :func:`init_feature_workspace` did."""

    repo_path: str
    customers: int
    seed: int
    generated: bool
    materialized: bool
    online_store: str
    seconds: float


def feature_repo_path(home: Path | str) -> Path:
    """The Feast repository of the workspace at ``home``."""
    return Path(home) / "feature_repo"


def customers_parquet(repo_path: Path | str) -> Path:
    """The offline Parquet file of every customer's batch features."""
    return Path(repo_path) / "data" / "customers.parquet"


def online_store_config(online_store: str) -> dict[str, Any]:
    """The ``online_store`` block for ``"sqlite"`` or ``"redis://HOST:PORT[/DB]"`` (Feast's
    connection string ``HOST:PORT[,db=DB]``)."""
    if online_store == "sqlite":
        return dict(SQLITE_ONLINE_STORE)
    if online_store.startswith("redis://"):
        address, _, db = online_store.removeprefix("redis://").rstrip("/").partition("/")
        if ":" not in address:
            address += ":6379"
        if db:
            if not db.isdigit():
                raise WorkspaceError(
                    f"online store {online_store!r}: the database after '/' must be a number",
                    field="online_store",
                )
            address += f",db={int(db)}"
        return {"type": "redis", "connection_string": address}
    raise WorkspaceError(
        f"unknown online store {online_store!r}: use 'sqlite' or 'redis://HOST:PORT[/DB]'",
        field="online_store",
    )


#: the template's registry block, and the SQL registry's (its URL from the environment)
_FILE_REGISTRY = "registry:\n  registry_type: file\n  path: data/registry.db\n"
_SQL_REGISTRY = "registry:\n  registry_type: sql\n  path: ${{{variable}}}\n"


def _write_yaml(
    repo: Path, online_store: str | None, registry_env: str | None = None
) -> dict[str, Any]:
    """Write ``feature_store.yaml`` when missing (or when ``online_store`` or
    ``registry_env`` is given). ``registry_env``: the environment variable holding the
    URL of Feast's SQL registry, which Feast expands when it reads the file (so every
    node reads one registry, and the password stays out of the file)."""
    import yaml

    path = repo / "feature_store.yaml"
    if path.exists() and online_store is None:
        text = path.read_text()
        if registry_env is not None and _FILE_REGISTRY in text:
            text = text.replace(_FILE_REGISTRY, _SQL_REGISTRY.format(variable=registry_env))
            path.write_text(text)
        config = yaml.safe_load(text)
        if not isinstance(config, dict) or "online_store" not in config:
            raise WorkspaceError(f"{path} is not a Feast repo configuration")
        return config
    text = (_TEMPLATE_DIR / "feature_store.yaml").read_text()
    config = yaml.safe_load(text)
    if online_store is not None and online_store != "sqlite":
        block = online_store_config(online_store)
        sqlite_block = "online_store:\n  type: sqlite\n  path: data/online_store.db\n"
        redis_block = "online_store:\n" + "".join(
            f"  {k}: {json.dumps(v)}\n" for k, v in block.items()
        )
        text = text.replace(sqlite_block, redis_block)
        config["online_store"] = block
    if registry_env is not None:
        text = text.replace(_FILE_REGISTRY, _SQL_REGISTRY.format(variable=registry_env))
        config["registry"] = {"registry_type": "sql", "path": f"${{{registry_env}}}"}
    path.write_text(text)
    return config


def copy_definitions(repo: Path) -> None:
    src = _TEMPLATE_DIR / "definitions.py"
    dst = repo / "definitions.py"
    if not dst.exists() or dst.read_bytes() != src.read_bytes():
        shutil.copyfile(src, dst)


def _read_manifest(repo: Path) -> dict[str, Any]:
    path = repo / "data" / MANIFEST
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _write_manifest(repo: Path, manifest: dict[str, Any]) -> None:
    path = repo / "data" / MANIFEST
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    os.replace(tmp, path)


def _write_parquet(
    repo: Path, customers: int, seed: int, now: float, agents: int = DEFAULT_AGENTS
) -> int:
    import pandas as pd

    base = generate_customers(customers, seed, agents=agents)
    frame = base.features.copy()
    # Feature values are those the simulator sees (the generator's fixed anchor date);
    # the row's event time is when it was loaded, so TTLs count from `maestro init`.
    frame["event_timestamp"] = pd.Timestamp(int(now), unit="s", tz="UTC")
    path = customers_parquet(repo)
    tmp = path.with_suffix(".parquet.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return len(frame)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence Feast's own prints and progress bars (ours is the one on the terminal)."""
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield


def load_definitions(repo: Path) -> Any:
    """Import the repo's ``definitions.py`` under a name unique to its path (Feast's own
    loader imports it as ``definitions``, which clashes between workspaces in one process)."""
    path = (repo / "definitions.py").resolve()
    name = "maestro_feature_repo_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise WorkspaceError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def feast_apply(repo: Path, store: FeatureStore | None = None) -> FeatureStore:
    """``feast apply`` of the repo, through Feast's own apply path (without its ``chdir``)."""
    from feast import Entity, FeatureService, FeatureStore, FeatureView, Project
    from feast.data_source import DataSource
    from feast.repo_contents import RepoContents
    from feast.repo_operations import apply_total_with_repo_instance
    from feast.stream_feature_view import StreamFeatureView

    from features.feast.views import silence_feast_warnings

    silence_feast_warnings()
    store = store or FeatureStore(repo_path=str(repo))
    module = load_definitions(repo)
    objs = [getattr(module, a) for a in dir(module)]
    sources: list[DataSource] = []
    for obj in objs:
        if isinstance(obj, FeatureView):
            for src in (obj.batch_source, obj.stream_source):
                if src is not None and not any(src is s for s in sources):
                    sources.append(src)
    contents = RepoContents(
        projects=[Project(name=store.config.project, description="Maestro customer features")],
        data_sources=sources,
        feature_views=[o for o in objs if type(o) is FeatureView],
        on_demand_feature_views=[],
        stream_feature_views=[o for o in objs if isinstance(o, StreamFeatureView)],
        label_views=[],
        entities=[o for o in objs if isinstance(o, Entity)],
        feature_services=[o for o in objs if isinstance(o, FeatureService)],
        permissions=[],
    )
    with _quiet():
        apply_total_with_repo_instance(
            store, store.config.project, store.registry, contents, skip_source_validation=True
        )
    store.refresh_registry()
    return store


def _clear_online_store(store: FeatureStore) -> None:
    """Drop every online row (before materialising a regenerated customer base); (re)create
    the online tables, which a deleted SQLite file lost without the registry knowing."""
    clear_online_views(store, all_views(store), "customer_id")


def init_feature_workspace(
    home: Path | str,
    customers: int = 10_000,
    seed: int = 7,
    progress: bool = False,
    online_store: str | None = None,
    agents: int = DEFAULT_AGENTS,
    registry_env: str | None = None,
) -> WorkspaceSummary:
    """Build (or bring up to date) the Feast repo under ``home``: synthetic customers →
    Parquet → ``feast apply`` → materialise into the online store. Idempotent.

    ``online_store``: ``None`` keeps the repo's configuration (SQLite for a new repo),
    ``"sqlite"`` or ``"redis://HOST:PORT"`` rewrites it. ``agents``: the size of the
    synthetic contact-centre roster (Feast view ``agent``). ``registry_env``: the
    environment variable naming Feast's SQL registry (unset: the repo's registry file).
    """
    from tqdm import tqdm

    if customers < 1:
        raise WorkspaceError("customers must be >= 1", field="customers")
    started = time.perf_counter()
    repo = feature_repo_path(home).resolve()
    (repo / "data").mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=4, desc="feature store", unit="step", disable=not progress, file=sys.stderr)
    try:
        config = _write_yaml(repo, online_store, registry_env)
        ensure_staged(repo, workspace_declaration(ensure_declaration(home).parent))
        copy_definitions(repo)
        bar.set_postfix_str("generating customers")
        manifest, generated = _ensure_customers(repo, customers, seed, agents)
        bar.update(1)

        # an online store deleted since the last run is materialised again
        online_lost = _online_store_lost(repo, config)
        bar.set_postfix_str("feast apply")
        store = apply_repo(repo)
        bar.update(1)

        bar.set_postfix_str("materializing")
        materialized = _materialize_if_needed(repo, store, config, manifest, online_lost)
        bar.update(2)
    finally:
        bar.close()
    summary = WorkspaceSummary(
        repo_path=str(repo),
        customers=customers,
        seed=seed,
        generated=generated,
        materialized=materialized,
        online_store=str(config["online_store"].get("type")),
        seconds=round(time.perf_counter() - started, 2),
    )
    return summary


def _ensure_customers(
    repo: Path, customers: int, seed: int, agents: int
) -> tuple[dict[str, Any], bool]:
    """The workspace manifest, after regenerating the customer and agent Parquet files
    when the manifest records other arguments (or generator versions) or a file is
    missing; the flag says whether they were regenerated."""
    manifest = _read_manifest(repo)
    wanted = {
        "customers": customers,
        "seed": seed,
        "generator": GENERATOR,
        "agents": agents,
        "agent_generator": AGENT_GENERATOR,
    }
    have = {k: manifest.get(k) for k in wanted}
    generated = (
        have != wanted or not customers_parquet(repo).exists() or not agents_parquet(repo).exists()
    )
    if generated:
        now = float(int(time.time()))
        rows = _write_parquet(repo, customers, seed, now, agents)
        write_agents_parquet(repo, agents, seed, now)
        manifest = {**wanted, "rows": rows, "event_timestamp": now, "materialized_into": None}
        _write_manifest(repo, manifest)
    return manifest, generated


def _online_store_lost(repo: Path, config: dict[str, Any]) -> bool:
    """True when the repo's SQLite online store file is gone (deleted since the last run)."""
    sqlite_db = repo / str(config["online_store"].get("path", SQLITE_ONLINE_STORE["path"]))
    return config["online_store"].get("type") == "sqlite" and not sqlite_db.exists()


def apply_repo(repo: Path) -> FeatureStore:
    """``feast apply`` of the repo, then WAL in its SQLite online store; any failure of
    Feast's is a :class:`~features.errors.WorkspaceError` naming the repo."""
    try:
        store = feast_apply(repo)
    except Exception as exc:  # Feast raises many unrelated types for a broken repo
        raise WorkspaceError(f"feast apply failed in {repo}: {exc}") from exc
    enable_wal(store)
    return store


def _materialize_if_needed(
    repo: Path,
    store: FeatureStore,
    config: dict[str, Any],
    manifest: dict[str, Any],
    online_lost: bool,
) -> bool:
    """Materialise the generated rows into the online store unless the manifest says they
    are already in this very store (and it was not lost); True when it materialised."""
    store_key = json.dumps(config["online_store"], sort_keys=True)
    materialized = manifest.get("materialized_into") != store_key or online_lost
    if materialized:
        ts = datetime.fromtimestamp(manifest["event_timestamp"], tz=UTC)
        with _quiet():
            _clear_online_store(store)
            clear_agent_rows(store)
            store.materialize(
                start_date=ts - timedelta(seconds=1), end_date=ts + timedelta(seconds=1)
            )
        manifest["materialized_into"] = store_key
        _write_manifest(repo, manifest)
    return materialized


def summary_dict(summary: WorkspaceSummary) -> dict[str, Any]:
    """The summary as a JSON-friendly dict (for the CLI)."""
    return asdict(summary)
