"""The Feast adapter's contract with Feast (features/feast/): rows Maestro writes in Feast's
format are read back unchanged by Feast's PUBLIC SDK (``FeatureStore.get_online_features``),
rows Feast's provider writes are read back unchanged by Maestro, and Maestro's erasure
leaves Feast nothing to read — on the SQLite and the Redis online store.

If this fails after a Feast upgrade, the upgrade changed the online row format or the
private API :mod:`features.feast.internals` relies on: do not raise the version bound in
``pyproject.toml`` until the adapter is fixed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from features.events import EVENT_VIEWS
from features.schema import GROUPS

EVENTS: list[dict[str, Any]] = [
    {"type": "page_view", "properties": {"page": "adapter"}},
    {"type": "cart_updated", "properties": {"cart_value": 42.5}},
    {"type": "message_opened", "properties": {"channel": "email"}},
    {"type": "complaint_opened", "properties": {}},
    {"type": "invoice_overdue", "properties": {"days_overdue": 3}},
    {"type": "consent_changed", "properties": {"channel": "sms", "granted": False}},
]
#: what those events set, one value of each Python type the views hold
EXPECTED = {
    "last_page": "adapter",
    "cart_value": 42.5,
    "opens_email_7d": 1,
    "open_complaint": True,
    "days_overdue": 3,
    "consent_sms": False,
}
VIEWS = sorted(set(EVENT_VIEWS.values()))


def _loud(what: str) -> str:
    import feast

    return (
        f"Feast {feast.__version__}: {what}. The online row format or the private API that "
        "features/feast/ relies on changed: fix the adapter before raising the bound."
    )


def _sdk(store: Any, customer_id: str) -> dict[str, Any]:
    """The customer's event-view features, read by Feast's public SDK."""
    refs = [f"{view}:{name}" for view in VIEWS for name in GROUPS[view]]
    answer = store.get_online_features(features=refs, entity_rows=[{"customer_id": customer_id}])
    return {k: v[0] for k, v in answer.to_dict().items() if k != "customer_id"}


@pytest.fixture(params=["sqlite", "redis"])
def home(request: pytest.FixtureRequest) -> Path:
    return request.getfixturevalue("workspace" if request.param == "sqlite" else "redis_workspace")


def test_feast_sdk_reads_maestros_rows(home: Path) -> None:
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    from features.erasure import erase_customer
    from features.event_writer import EventWriter
    from features.feast.row_format import entity_key_bytes
    from features.feast.source import open_feature_source

    cid = f"c-adapter-{home.name}"  # only events create it: the shared base stays intact
    key = EntityKey(join_keys=["customer_id"], entity_values=[Value(string_val=cid)])
    assert entity_key_bytes(cid) == serialize_entity_key(key, 3), _loud("entity keys differ")
    source = open_feature_source(home, timeout=2.0)
    writer = EventWriter(source, start=False)  # flushed below, by the test
    try:
        for event in EVENTS:
            writer.ingest({"customer_id": cid, **event})
        assert writer.flush() > 0
        sdk = _sdk(source.store, cid)
        for name, value in EXPECTED.items():
            assert sdk[name] == value and type(sdk[name]) is type(value), _loud(
                f"the SDK reads {name}={sdk[name]!r} where Maestro wrote {value!r}"
            )
        ours = source.get(cid).values
        differ = {n: (sdk[n], ours[n]) for n in sdk if sdk[n] != ours[n]}
        assert not differ, _loud(f"the SDK and Maestro read the row differently: {differ}")
        erase_customer(source, cid, writer)
        left = {n: v for n, v in _sdk(source.store, cid).items() if v is not None}
        assert not left, _loud(f"the SDK still reads erased values {left}")
    finally:
        writer.close()
        source.close()


def test_maestro_reads_rows_feasts_provider_wrote(home: Path) -> None:
    from features.erasure import erase_customer
    from features.feast.internals import write_through_provider
    from features.feast.source import open_feature_source
    from features.feast.views import all_views

    cid = f"c-provider-{home.name}"
    writer_side = open_feature_source(home, timeout=2.0)
    try:
        views = {v.name: v for v in all_views(writer_side.store)}
        rows = [(cid, {"last_page": "provider", "cart_value": 7.25, "session_pages": 4}, 1.7e9)]
        write_through_provider(
            writer_side.store, views["customer_session"], GROUPS["customer_session"], rows
        )
        reader = open_feature_source(home, timeout=2.0)  # a fresh reader: no cached row
        try:
            got = reader.get(cid).values
        finally:
            reader.close()
        wanted = {"last_page": "provider", "cart_value": 7.25, "session_pages": 4}
        read = {n: got[n] for n in wanted}
        assert read == wanted, _loud(f"Maestro reads {read} where Feast's provider wrote {wanted}")
        erase_customer(writer_side, cid)
    finally:
        writer_side.close()
