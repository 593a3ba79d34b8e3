"""Feast objects generated from a workspace's :class:`~features.declared.Declaration`.

One entity (``customer``, join key ``customer_id``); one feature view per declared view,
each with an explicit schema and its declared TTL; the built-in views read the synthetic
customers' Parquet unless a declared source feeds them, custom views read their source's
staged Parquet (``data/staged/<source>.parquet``, written by ``maestro load``). Every
view but the profile has a :class:`~feast.PushSource` wrapping its batch source, so
``POST /events`` can update it; the session view is a :class:`~feast.StreamFeatureView`.
Each field carries its unknown-customer default as a tag, so the online reads take types
and defaults from the registry. Feature services: ``policy_inputs_v1`` (every customer
view), ``rules_inputs_v1`` and ``<source>_features`` per declared source; plus the
contact-centre agents (entity, view, service).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from features.schema import AGENT_FEATURES, AGENT_JOIN_KEY, AGENT_VIEW

if TYPE_CHECKING:
    from features.declared import Declaration, ViewDecl

#: The offline data (relative to the repository, so the workspace can move).
CUSTOMERS_PARQUET = "data/customers.parquet"
AGENTS_PARQUET = "data/agents.parquet"
DEFAULT_TAG = "maestro_default"
#: the staged rows' load time (Feast's created timestamp: the later load wins a tie)
LOADED_AT = "loaded_at"


def staged_path(source: str) -> str:
    """The staged Parquet of one declared source, relative to the repository."""
    return f"data/staged/{source}.parquet"


def _dtype(typ: type) -> Any:
    from feast.types import Bool, Float64, Int64, String

    return {str: String, int: Int64, float: Float64, bool: Bool}[typ]


def _batch_sources(decl: Declaration) -> dict[str, Any]:
    from feast import FileSource

    out = {
        "synthetic": FileSource(
            name="customers_parquet", path=CUSTOMERS_PARQUET, timestamp_field="event_timestamp"
        )
    }
    for src in decl.sources:
        out[src.name] = FileSource(
            name=f"source_{src.name}",
            path=staged_path(src.name),
            timestamp_field="event_timestamp",
            created_timestamp_column=LOADED_AT,
        )
    return out


def _view(decl: Declaration, view: ViewDecl, batch: Any, entity: Any) -> Any:
    from feast import FeatureView, Field, PushSource
    from feast.stream_feature_view import StreamFeatureView

    schema = [
        Field(name=f.name, dtype=_dtype(f.type), tags={DEFAULT_TAG: json.dumps(f.default)})
        for f in decl.view_features(view.name)
    ]
    source = PushSource(name=f"{view.name}_push", batch_source=batch) if view.push else batch
    cls = StreamFeatureView if view.stream else FeatureView
    return cls(
        name=view.name,
        entities=[entity],
        ttl=timedelta(seconds=view.ttl_seconds),
        schema=schema,
        source=source,
        online=True,
        tags={"group": view.name.removeprefix("customer_"), "maestro": "customer"},
    )


def _agents() -> dict[str, Any]:
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType

    agent = Entity(
        name="agent",
        join_keys=[AGENT_JOIN_KEY],
        value_type=ValueType.STRING,
        description="A contact-centre agent",
    )
    source = FileSource(
        name="agents_parquet", path=AGENTS_PARQUET, timestamp_field="event_timestamp"
    )
    view = FeatureView(
        name=AGENT_VIEW,
        entities=[agent],
        ttl=timedelta(seconds=0),  # an agent's last known state holds until pushed again
        schema=[Field(name=n, dtype=_dtype(t)) for n, t in AGENT_FEATURES.items()],
        source=PushSource(name="agent_push", batch_source=source),
        online=True,
        tags={"group": "agent"},
    )
    service = FeatureService(
        name="agent_roster_v1",
        features=[view],
        description="The contact-centre agents: skills, level, languages, load, capacity.",
    )
    return {"agent": agent, "agents_source": source, "agent_view": view, "agent_roster_v1": service}


def feast_objects(decl: Declaration) -> dict[str, Any]:
    """Every Feast object of the workspace, by the name ``definitions.py`` exposes it under."""
    from feast import Entity, FeatureService, ValueType

    customer = Entity(
        name="customer",
        join_keys=["customer_id"],
        value_type=ValueType.STRING,
        description="A customer",
    )
    batches = _batch_sources(decl)
    views = {v.name: _view(decl, v, batches[v.source], customer) for v in decl.views}
    builtin = [views[v.name] for v in decl.views if v.builtin]
    rules = [views["customer_profile"][["timezone"]]] + [
        views[n]
        for n in ("customer_engagement", "customer_service", "customer_billing", "customer_consent")
    ]
    out: dict[str, Any] = {"customer": customer, "customers_source": batches["synthetic"]}
    out.update({f"source_{s.name}": batches[s.name] for s in decl.sources})
    out.update(views)
    out["policy_inputs_v1"] = FeatureService(
        name="policy_inputs_v1",
        features=builtin + [views[v.name] for v in decl.views if not v.builtin],
        description="All customer features; the inputs of every v1 policy.",
    )
    for src in decl.sources:  # what one system of record gives (training reads, checks)
        out[f"{src.name}_features"] = FeatureService(
            name=f"{src.name}_features",
            features=[views[v.name] for v in decl.views if v.source == src.name],
            description=f"The features fed by the source {src.name}.",
        )
    out["rules_inputs_v1"] = FeatureService(
        name="rules_inputs_v1", features=rules, description="What the business rules read."
    )
    out.update(_agents())
    return out
