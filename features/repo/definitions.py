"""Maestro's Feast definitions, laid out as Feast's own ``local`` template lays them out.

One entity (``customer``, join key ``customer_id``); one feature view per group of
:data:`features.schema.GROUPS`, each with an explicit schema and the TTL of
:data:`features.schema.TTL_SECONDS`. Every view but the profile reads from a
:class:`~feast.PushSource` wrapping the batch Parquet file, so ``POST /events`` can
update it with ``FeatureStore.push`` while ``feast materialize`` still loads it from the
offline data; the real-time session signals are a :class:`~feast.StreamFeatureView`.
A :class:`~feast.FeatureService` pins the inputs of each policy version.

Contact-centre agents: entity ``agent`` (join key ``agent_id``) and the feature
view ``agent`` (:data:`features.schema.AGENT_FEATURES`: skills, level, languages, load,
capacity, available), from ``data/agents.parquet`` through the push source ``agent_push``
(load and availability change by ``FeatureStore.push``). It never expires: an agent's last
known state holds until the contact-centre platform pushes a new one.
"""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType
from feast.stream_feature_view import StreamFeatureView
from feast.types import Bool, Float64, Int64, String

from features.schema import AGENT_FEATURES, AGENT_JOIN_KEY, AGENT_VIEW, GROUPS, TTL_SECONDS

_DTYPES = {str: String, int: Int64, float: Float64, bool: Bool}
#: The offline data, written by ``maestro init`` (one row per customer, all features);
#: relative to the repository, so the workspace can move.
CUSTOMERS_PARQUET = "data/customers.parquet"
AGENTS_PARQUET = "data/agents.parquet"

customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.STRING,
    description="A customer",
)

customers_source = FileSource(
    name="customers_parquet",
    path=CUSTOMERS_PARQUET,
    timestamp_field="event_timestamp",
)


def _schema(view: str) -> list[Field]:
    return [Field(name=name, dtype=_DTYPES[typ]) for name, typ in GROUPS[view].items()]


def _push_source(view: str) -> PushSource:
    return PushSource(name=f"{view}_push", batch_source=customers_source)


customer_profile = FeatureView(
    name="customer_profile",
    entities=[customer],
    ttl=timedelta(seconds=TTL_SECONDS["customer_profile"]),
    schema=_schema("customer_profile"),
    source=customers_source,
    online=True,
    tags={"group": "profile"},
)
customer_engagement = FeatureView(
    name="customer_engagement",
    entities=[customer],
    ttl=timedelta(seconds=TTL_SECONDS["customer_engagement"]),
    schema=_schema("customer_engagement"),
    source=_push_source("customer_engagement"),
    online=True,
    tags={"group": "engagement"},
)
customer_service = FeatureView(
    name="customer_service",
    entities=[customer],
    ttl=timedelta(seconds=TTL_SECONDS["customer_service"]),
    schema=_schema("customer_service"),
    source=_push_source("customer_service"),
    online=True,
    tags={"group": "service"},
)
customer_billing = FeatureView(
    name="customer_billing",
    entities=[customer],
    ttl=timedelta(seconds=TTL_SECONDS["customer_billing"]),
    schema=_schema("customer_billing"),
    source=_push_source("customer_billing"),
    online=True,
    tags={"group": "billing"},
)
customer_consent = FeatureView(
    name="customer_consent",
    entities=[customer],
    ttl=timedelta(seconds=TTL_SECONDS["customer_consent"]),  # 0: never expires
    schema=_schema("customer_consent"),
    source=_push_source("customer_consent"),
    online=True,
    tags={"group": "consent"},
)
customer_session = StreamFeatureView(
    name="customer_session",
    entities=[customer],
    ttl=timedelta(seconds=TTL_SECONDS["customer_session"]),
    schema=_schema("customer_session"),
    source=_push_source("customer_session"),
    online=True,
    tags={"group": "session"},
)

#: Inputs of the version-1 policies (every view): what a policy trained on v1 reads.
policy_inputs_v1 = FeatureService(
    name="policy_inputs_v1",
    features=[
        customer_profile,
        customer_engagement,
        customer_service,
        customer_billing,
        customer_consent,
        customer_session,
    ],
    description="All customer features; the inputs of every v1 policy.",
)
#: Inputs of the static journey rules (eligibility: consent, complaints, billing, fatigue).
rules_inputs_v1 = FeatureService(
    name="rules_inputs_v1",
    features=[
        customer_profile[["timezone"]],
        customer_engagement,
        customer_service,
        customer_billing,
        customer_consent,
    ],
    description="What the business rules read.",
)

agent = Entity(
    name="agent",
    join_keys=[AGENT_JOIN_KEY],
    value_type=ValueType.STRING,
    description="A contact-centre agent",
)
agents_source = FileSource(
    name="agents_parquet",
    path=AGENTS_PARQUET,
    timestamp_field="event_timestamp",
)
agent_view = FeatureView(
    name=AGENT_VIEW,
    entities=[agent],
    ttl=timedelta(seconds=0),  # never expires
    schema=[Field(name=name, dtype=_DTYPES[typ]) for name, typ in AGENT_FEATURES.items()],
    source=PushSource(name="agent_push", batch_source=agents_source),
    online=True,
    tags={"group": "agent"},
)
#: What agent routing reads of each agent (features.agents.AgentSource).
agent_roster_v1 = FeatureService(
    name="agent_roster_v1",
    features=[agent_view],
    description="The contact-centre agents: skills, level, languages, load, capacity.",
)
