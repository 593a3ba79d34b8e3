"""Integration: whether a customer is known, as the decision service reads it from the Feast
online store — real Feast SQLite and a real redis-server (started by the fixture). A
materialised customer is known; a mistyped id is not (decided from the defaults, logged
and counted so); a visitor written by events is known here at once and to another
process's reader after the flush; erasure makes the id unknown again."""

from __future__ import annotations

from pathlib import Path

import orjson
import pandas as pd
import pytest

from features.schema import DEFAULTS

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Stream feature views:RuntimeWarning"),
]
CART = "cart_abandoned"


@pytest.fixture(params=["sqlite", "redis"])
def served(request: pytest.FixtureRequest, tmp_path: Path):
    """``(service, other)``: a started decision service over the workspace's Feast layer
    (SQLite or Redis online store) and an independent reader of the same store."""
    from features.feast.source import open_feature_source
    from features.layer import FeastFeatureLayer
    from policies.catalog import load_catalog
    from serving.eventlog.log import EventLog
    from serving.service.decision_service import DecisionService
    from serving.service.ids import EventIdSigner
    from serving.service.policy_store import PolicyStore

    home: Path = request.getfixturevalue(
        "workspace" if request.param == "sqlite" else "redis_workspace"
    )
    layer = FeastFeatureLayer(home, timeout=2.0, flush_interval=0.02)
    catalog = load_catalog(None)
    service = DecisionService(
        catalog=catalog, features=layer, writer=layer, policies=PolicyStore(catalog, None),
        log=EventLog(tmp_path / "logs", roll_seconds=3600), signer=EventIdSigner(b"k" * 32),
    ).start()
    other = open_feature_source(home, timeout=2.0)
    yield service, other
    other.close()
    service.close()  # closes the layer too


def _decide(service, cid: str) -> dict:
    from serving.api.schemas import DecideRequest

    req = DecideRequest.model_validate({"customer_id": cid, "decision_point": CART})
    return orjson.loads(service.decide(req))


def test_known_and_unknown_customers_of_the_online_store(served, tmp_path: Path) -> None:
    service, _ = served
    known, typo = _decide(service, "c-000017"), _decide(service, "c-00017")
    assert known["customer_known"] is True and typo["customer_known"] is False
    assert known["degraded"] is False and typo["degraded"] is False
    assert service.metrics.registry.get_sample_value(
        "maestro_unknown_customer_decisions_total", {"decision_point": CART}
    ) == 1.0
    service.log.roll()
    frame = pd.read_parquet(tmp_path / "logs" / "decisions").set_index("event_id")
    assert frame.loc[[known["event_id"], typo["event_id"]], "customer_known"].tolist() == [
        True, False
    ]
    assert orjson.loads(frame.loc[typo["event_id"], "customer_features"]) == dict(DEFAULTS)


def test_a_visitor_written_by_events_is_known_until_erased(served) -> None:
    from serving.api.schemas import EventRequest

    service, other = served
    cid = "v-known-visitor"
    assert _decide(service, cid)["customer_known"] is False and not other.get(cid).known
    service.ingest(EventRequest(customer_id=cid, type="page_view", properties={"page": "faq"}))
    assert _decide(service, cid)["customer_known"] is True  # pending here: seen at once
    service.writer.writer.flush()
    assert other.get(cid).known and other.get(cid).values["last_page"] == "faq"
    service.erase(cid)
    assert _decide(service, cid)["customer_known"] is False and not other.get(cid).known
