"""Wiring: settings → a ready-to-start :class:`DecisionService` (the one place serving
knows which feature layer, registry and log directory to use)."""

from __future__ import annotations

from typing import Any

from features.declared import workspace_declaration
from features.errors import WorkspaceError
from features.events import EVENT_TYPES
from features.layer import FeastFeatureLayer
from features.source import InMemoryFeatureSource
from features.synthetic import generate_customers
from policies.catalog import Catalog, load_catalog
from policies.segments import TRIGGERS_FILE, SegmentSet, load_segments
from serving.delivery.factory import build_delivery
from serving.delivery.factory import destinations as delivery_destinations
from serving.delivery.ports import DeliveryQueue
from serving.eventlog.log import EventLog
from serving.experiments.variants import load_experiments
from serving.rollout.rollout import Rollout
from serving.service.contacts import ContactStage
from serving.service.decision_service import DecisionService, ServiceOptions
from serving.service.drift import DriftMonitor, DriftOptions
from serving.service.feature_layer import InMemoryFeatureLayer
from serving.service.ids import EventIdSigner
from serving.service.metrics import Metrics
from serving.service.policy_store import PolicyStore
from serving.settings import Settings
from serving.state.contacts import ContactStore
from serving.state.contacts_sqlite import SQLiteContactStore
from serving.state.identity import identity_store
from serving.state.select import assignment_store, log_index_opener
from serving.state.timers import TimerStore
from serving.triggers.engine import EngineOptions, TriggerEngine
from serving.triggers.runtime import Triggers
from serving.triggers.spec import Trigger, load_triggers
from training.drift.alarms import alarm_path


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


def workspace_triggers(
    settings: Settings, loaded: tuple[Catalog, SegmentSet] | None = None
) -> dict[str, Trigger]:
    """The ``triggers:`` of ``triggers.yaml``, checked against the workspace's catalog,
    features, segments, event types and destinations (``file:line: problem``, exit 2)."""
    catalog, segments = loaded or workspace_catalog(settings)
    types = workspace_declaration(settings.home).types()
    return load_triggers(settings.home / TRIGGERS_FILE, catalog, types, segments, EVENT_TYPES)


def timer_store(settings: Settings) -> TimerStore:
    """The timer store ``settings`` name (SQLite under ``$MAESTRO_HOME`` or Redis)."""
    if settings.timer_store == "redis":
        from serving.state.timers_redis import RedisTimerStore

        assert settings.timer_redis_url is not None  # checked by the settings
        return RedisTimerStore(settings.timer_redis_url)
    from serving.state.timers_sqlite import SQLiteTimerStore

    return SQLiteTimerStore(settings.timers_db)


def trigger_runtime(
    settings: Settings,
    triggers: dict[str, Trigger],
    segments: SegmentSet,
    feature_layer: Any,
    metrics: Metrics,
    delivery: DeliveryQueue | None,
) -> Triggers | None:
    """The triggers' engine and scheduler (None when no trigger is declared)."""
    if not triggers:
        return None
    if delivery is None:
        raise WorkspaceError(
            f"{settings.home / TRIGGERS_FILE} declares triggers but no delivery queue was "
            "given to deliver their decisions", field="triggers",
        )
    for trigger in triggers.values():  # the one activation of an event carries these
        for condition in trigger.conditions:
            segments.require(condition.customer, ())
    engine = TriggerEngine(
        triggers, timer_store(settings), delivery,
        features=lambda cid: feature_layer.get(cid).values,
        segments=segments, registry=metrics.registry,
        options=EngineOptions(lease_seconds=settings.timer_lease_seconds),
    )
    return Triggers(engine, poll_seconds=settings.timer_poll_seconds)


def preflight(settings: Settings) -> None:
    """Fail loudly, before any engine starts, on a workspace that cannot be served."""
    delivery_destinations(settings)  # destinations: of triggers.yaml, secrets set
    workspace_triggers(settings)  # the catalog's and the segments' conditions too
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


def build_service(
    settings: Settings,
    feature_layer: Any | None = None,
    delivery: DeliveryQueue | None = None,
) -> DecisionService:
    """A service for ``settings`` (not started: the app's lifespan starts it). Its triggers
    hand their decisions to ``delivery`` when given, else to the workspace's delivery."""
    catalog, segments = workspace_catalog(settings)
    triggers = workspace_triggers(settings, (catalog, segments))
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
    metrics = Metrics()
    service = DecisionService(
        catalog=catalog,
        features=feature_layer,
        writer=feature_layer,
        policies=policies,
        log=log,
        signer=signer,
        metrics=metrics,
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
        drift=drift_monitor(settings, metrics, log.name),
    )
    if settings.tracking_uri is not None:  # staged rollout: shadow, canary, watched champion
        service.use_rollout(
            Rollout(catalog, settings.tracking_uri, policies, poll_seconds=settings.poll_seconds)
        )
    service.delivery = build_delivery(settings, service)  # None: no destination declared
    # the triggers fire through the service's decide and hand contacts to its delivery
    # (or to ``delivery``, when the caller gives one)
    service.triggers = trigger_runtime(
        settings, triggers, segments, feature_layer, service.metrics, delivery or service.delivery
    )
    return service


def drift_monitor(settings: Settings, metrics: Metrics, replica: str) -> DriftMonitor:
    """The drift detectors and online learner of one replica (alarms to the workspace)."""
    options = DriftOptions(
        delta=settings.drift_delta, reference=max(1, settings.drift_window // 2),
        window=settings.drift_window, online=settings.online_learning,
        max_updates=settings.online_max_updates,
    )  # fmt: skip
    return DriftMonitor(metrics, options, alarm_path(settings.home), replica)


def build_app(
    settings: Settings,
    feature_layer: Any | None = None,
    *,
    decide_in_threadpool: bool = False,
    delivery: DeliveryQueue | None = None,
) -> Any:
    """The FastAPI app for ``settings`` (both engines serve exactly this)."""
    from serving.api.app import create_app

    return create_app(
        build_service(settings, feature_layer, delivery),
        api_keys=settings.api_keys,
        max_body_bytes=settings.max_body_bytes,
        decide_in_threadpool=decide_in_threadpool,
        admission=settings.admission,
    )
