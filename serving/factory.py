"""Wiring: settings → a ready-to-start :class:`DecisionService` (the one place serving
knows which feature layer, registry and log directory to use)."""

from __future__ import annotations

from typing import Any

from features.declared import workspace_declaration
from features.errors import WorkspaceError
from features.layer import FeastFeatureLayer
from features.source import InMemoryFeatureSource
from features.synthetic import generate_customers
from policies.catalog import Catalog, load_catalog
from policies.segments import TRIGGERS_FILE, SegmentSet, load_segments
from serving.eventlog.log import EventLog
from serving.experiments.variants import load_experiments
from serving.service.contacts import ContactStage
from serving.service.decision_service import DecisionService, ServiceOptions
from serving.service.feature_layer import InMemoryFeatureLayer
from serving.service.ids import EventIdSigner
from serving.service.metrics import Metrics
from serving.service.policy_store import PolicyStore
from serving.settings import Settings
from serving.state.contacts import ContactStore
from serving.state.contacts_sqlite import SQLiteContactStore
from serving.state.identity import identity_store
from serving.state.select import assignment_store, log_index_opener


def memory_layer_from_synthetic(n: int = 1000, seed: int = 7) -> InMemoryFeatureLayer:
    """An in-memory feature layer holding ``n`` synthetic customers (demos, tests)."""
    frame = generate_customers(n, seed).features
    rows = {
        r["customer_id"]: {
            k: (v.item() if hasattr(v, "item") else v)
            for k, v in r.items()
            if k not in ("customer_id", "event_timestamp")
        }
        for r in frame.to_dict(orient="records")
    }
    return InMemoryFeatureLayer(InMemoryFeatureSource(rows))


def feast_layer(settings: Settings) -> Any:
    """The Feast-backed feature layer of the workspace at ``$MAESTRO_HOME/feature_repo``."""
    repo = settings.feature_repo
    if not (repo / "feature_store.yaml").exists():
        raise WorkspaceError(
            f"no Feast repo at {repo}: run `maestro init` first (or set MAESTRO_HOME)",
            field="MAESTRO_HOME",
        )
    return FeastFeatureLayer(repo, cache_size=settings.feature_cache_size,
                             cache_seconds=settings.feature_cache_seconds)


def workspace_catalog(settings: Settings) -> tuple[Catalog, SegmentSet]:
    """The catalog and the segments of ``triggers.yaml``, their conditions checked against
    the workspace's declared features (a bad one raises ``file:line: problem``, exit 2)."""
    home = settings.home
    types = workspace_declaration(home).types()
    segments = SegmentSet(load_segments(home / TRIGGERS_FILE, types))
    return load_catalog(settings.catalog_file, types, segments), segments


def preflight(settings: Settings) -> None:
    """Fail loudly, before any engine starts, on a workspace that cannot be served."""
    workspace_catalog(settings)
    if (
        settings.feature_source == "feast"
        and not (settings.feature_repo / "feature_store.yaml").exists()
    ):
        raise WorkspaceError(
            f"no Feast repo at {settings.feature_repo}: run `maestro init` first "
            "(or set MAESTRO_HOME)",
            field="MAESTRO_HOME",
        )


def contact_store(settings: Settings, catalog: Catalog) -> ContactStore:
    """The contact store ``settings`` name, keeping history as long as the catalog's longest
    contact window (at least a day)."""
    horizons = [p.rules.contact.horizon_seconds for p in catalog.decision_points.values()]
    retention = max([86_400.0, *horizons])
    if settings.contact_store == "redis":
        from serving.state.contacts_redis import RedisContactStore

        assert settings.contact_redis_url is not None  # checked by the settings
        return RedisContactStore(settings.contact_redis_url, retention)
    return SQLiteContactStore(settings.contacts_db, retention)


def build_service(settings: Settings, feature_layer: Any | None = None) -> DecisionService:
    """A service for ``settings`` (not started: the app's lifespan starts it)."""
    catalog, segments = workspace_catalog(settings)
    if feature_layer is None:
        feature_layer = (
            memory_layer_from_synthetic()
            if settings.feature_source == "memory"
            else feast_layer(settings)
        )
    policies = PolicyStore(
        catalog,
        settings.tracking_uri,
        poll_seconds=settings.poll_seconds,
        cold_start_kind=settings.cold_start_kind,
    )
    log = EventLog(
        settings.logs_dir,
        flush_ms=settings.flush_ms,
        roll_seconds=settings.roll_seconds,
        reward_mode=settings.reward_mode,
        index=log_index_opener(settings),
        dataset=settings.log_location,
    )
    signer = EventIdSigner(settings.signing_key())
    return DecisionService(
        catalog=catalog,
        features=feature_layer,
        writer=feature_layer,
        policies=policies,
        log=log,
        signer=signer,
        metrics=Metrics(),
        options=ServiceOptions(
            time_budget_ms=settings.time_budget_ms,
            kill_switch=settings.kill_switch,
            apprentice=settings.apprentice,
        ),
        experiments=load_experiments(
            settings.experiments_file,
            catalog,
            lambda: assignment_store(settings),
            settings.tracking_uri,
        ),
        agents=feature_layer.agents,
        contacts=ContactStage(contact_store(settings, catalog), catalog, signer),
        identity=identity_store(settings),
        segments=segments,
    )


def build_app(
    settings: Settings, feature_layer: Any | None = None, *, decide_in_threadpool: bool = False
) -> Any:
    """The FastAPI app for ``settings`` (both engines serve exactly this)."""
    from serving.api.app import create_app

    return create_app(
        build_service(settings, feature_layer),
        api_keys=settings.api_keys,
        max_body_bytes=settings.max_body_bytes,
        decide_in_threadpool=decide_in_threadpool,
        admission=settings.admission,
    )
