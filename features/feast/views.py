"""The feature views the decision path reads, resolved once from Feast's registry.

A :class:`ViewSpec` names a view's online table, its features and its TTL, so the
backends (:mod:`features.feast.sqlite_backend`, :mod:`features.feast.redis_backend`)
read Feast's tables without asking the registry on every call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from features.schema import ALL_FEATURES, DEFAULTS, GROUPS

if TYPE_CHECKING:
    from feast import FeatureStore

FEATURE_SERVICE = "policy_inputs_v1"


@dataclass(frozen=True)
class ViewSpec:
    """One feature view as resolved from the registry: its online table and TTL."""

    name: str
    features: tuple[str, ...]
    ttl_seconds: float  # 0: never stale
    table: str
    #: feature → Python type, and → the value served for an unknown customer (from the
    #: declaration, carried by the registry's field tags)
    types: dict[str, type] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)


def silence_feast_warnings() -> None:
    """Feast warns on every stream feature view it builds (they are "alpha"); ours is a
    plain push-fed view, so that warning is noise on every registry load."""
    import warnings

    warnings.filterwarnings(
        "ignore", message="Stream feature views are experimental", category=RuntimeWarning
    )


def all_views(store: FeatureStore) -> list[Any]:
    """Maestro's customer views (feature and stream feature views) from the registry."""
    views = store.list_feature_views() + store.list_stream_feature_views()
    return [v for v in views if v.name in GROUPS or v.tags.get("maestro") == "customer"]


_PYTYPES = {"String": str, "Int64": int, "Float64": float, "Bool": bool}
_DEFAULT_TAG = "maestro_default"


def _field_types(fields: Any) -> tuple[dict[str, type], dict[str, Any]]:
    """Types and unknown-customer defaults of a projection's fields: a built-in feature by
    the schema, a declared one by its dtype and its default tag."""
    types: dict[str, type] = {}
    defaults: dict[str, Any] = {}
    for f in fields:
        typ = ALL_FEATURES.get(f.name) or _PYTYPES[str(f.dtype)]
        types[f.name] = typ
        tag = f.tags.get(_DEFAULT_TAG) if f.tags else None
        defaults[f.name] = json.loads(tag) if tag is not None else DEFAULTS.get(f.name)
    return types, defaults


def resolve_views(store: FeatureStore, service: str = FEATURE_SERVICE) -> list[ViewSpec]:
    """Resolve the feature service's views, features and TTLs once, from the registry."""
    from feast.infra.online_stores.helpers import compute_table_id

    by_name = {v.name: v for v in all_views(store)}
    specs = []
    for projection in store.get_feature_service(service).feature_view_projections:
        view = by_name[projection.name]
        ttl = view.ttl.total_seconds() if view.ttl else 0.0
        types, defaults = _field_types(projection.features)
        specs.append(
            ViewSpec(
                name=view.name,
                features=tuple(f.name for f in projection.features),
                ttl_seconds=ttl,
                table=compute_table_id(store.config.project, view),
                types=types,
                defaults=defaults,
            )
        )
    return specs
