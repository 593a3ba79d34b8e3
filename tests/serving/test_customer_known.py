"""``customer_known`` in process (no HTTP): the answer says whether the feature store holds
the customer, the logged row carries it, ``/metrics`` counts the unknown ones per decision
point; a visitor seen through ``/events`` is known; a store that cannot be read makes it
unknowable (null); a replayed ``request_id`` answers what was answered."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from features.schema import DEFAULTS
from features.source import InMemoryFeatureSource
from policies.catalog import load_catalog
from serving.api.schemas import DecideRequest, EventRequest
from serving.eventlog.log import EventLog
from serving.service.decision_service import DecisionService
from serving.service.feature_layer import InMemoryFeatureLayer
from serving.service.ids import EventIdSigner
from serving.service.policy_store import PolicyStore
from serving.service.recorder import request_key

CART = "cart_abandoned"
CONSENT = {f"consent_{c}": True for c in ("email", "push", "sms", "in_app", "whatsapp")}
UNKNOWN = "maestro_unknown_customer_decisions_total"


@pytest.fixture
def service(tmp_path: Path) -> Any:
    catalog = load_catalog(None)
    layer = InMemoryFeatureLayer(InMemoryFeatureSource({"c-000042": {**CONSENT}}))
    svc = DecisionService(
        catalog=catalog, features=layer, writer=layer, policies=PolicyStore(catalog, None),
        log=EventLog(tmp_path / "logs", roll_seconds=3600), signer=EventIdSigner(b"k" * 32),
    ).start()
    yield svc
    svc.close()


def _decide(service: DecisionService, cid: str, dp: str = CART, **extra: Any) -> dict:
    body = {"customer_id": cid, "decision_point": dp, **extra}
    return orjson.loads(service.decide(DecideRequest.model_validate(body)))


def _unknown_count(service: DecisionService, dp: str = CART) -> float:
    value = service.metrics.registry.get_sample_value(UNKNOWN, {"decision_point": dp})
    return 0.0 if value is None else value


def _logged(service: DecisionService, tmp_path: Path) -> pd.DataFrame:
    service.log.roll()
    return pd.read_parquet(tmp_path / "logs" / "decisions").set_index("event_id")


def test_a_mistyped_id_is_decided_from_defaults_and_said_unknown(service, tmp_path) -> None:
    known = _decide(service, "c-000042")
    typo = _decide(service, "c-00042")
    assert known["customer_known"] is True and typo["customer_known"] is False
    # still a decision, not degraded: the defaults (no consent) leave only consent-free actions
    assert typo["degraded"] is False and typo["policy"] == known["policy"]
    assert math.isclose(sum(r["probability"] for r in typo["ranking"]), 1.0, abs_tol=1e-9)
    assert typo["action_id"] in {r["action_id"] for r in typo["ranking"]}
    reasons = {e["reason"] for e in typo["excluded"]}
    assert reasons and all(r.startswith("no_consent:") for r in reasons)
    assert "email_reminder" in {r["action_id"] for r in known["ranking"]}  # consent counts
    frame = _logged(service, tmp_path)
    assert frame.loc[[known["event_id"], typo["event_id"]], "customer_known"].tolist() == [
        True, False
    ]
    logged = orjson.loads(frame.loc[typo["event_id"], "customer_features"])
    assert logged == dict(DEFAULTS)


def test_metrics_count_unknown_decisions_per_decision_point(service) -> None:
    assert _unknown_count(service) == 0.0
    for i in range(3):
        _decide(service, f"x-{i}")
    _decide(service, "x-9", dp="onboarding")
    _decide(service, "c-000042")
    _decide(service, "c-000042", dp="onboarding")
    assert _unknown_count(service) == 3.0
    assert _unknown_count(service, "onboarding") == 1.0
    text = service.metrics.render().decode()
    assert f'{UNKNOWN}{{decision_point="cart_abandoned"}} 3.0' in text


def test_a_visitor_seen_through_events_is_known_until_erased(service, tmp_path) -> None:
    assert _decide(service, "v-new")["customer_known"] is False
    service.ingest(EventRequest(customer_id="v-new", type="page_view",
                                properties={"page": "pricing"}))
    seen = _decide(service, "v-new")
    assert seen["customer_known"] is True
    frame = _logged(service, tmp_path)
    assert orjson.loads(frame.loc[seen["event_id"], "customer_features"])["last_page"] == "pricing"
    service.erase("v-new")
    assert _decide(service, "v-new")["customer_known"] is False
    assert _unknown_count(service) == 2.0


def test_a_store_that_cannot_be_read_answers_null_and_counts_nothing(service, tmp_path) -> None:
    service.features.available = False
    try:
        down = [_decide(service, cid) for cid in ("c-000042", "nobody")]
    finally:
        service.features.available = True
    assert [(d["customer_known"], d["degraded"]) for d in down] == [(None, True), (None, True)]
    assert _unknown_count(service) == 0.0
    frame = _logged(service, tmp_path)
    assert frame.loc[[d["event_id"] for d in down], "customer_known"].isna().all()


def test_a_replayed_request_id_answers_what_was_answered(service) -> None:
    first = _decide(service, "c-00042", request_id="r-1")
    again = _decide(service, "c-00042", request_id="r-1")
    assert again == first and again["customer_known"] is False
    assert _unknown_count(service) == 1.0  # decided once, counted once
    # an answer remembered before answers carried the field: replayed with null
    old = {k: v for k, v in _decide(service, "c-000042").items() if k != "customer_known"}
    req = DecideRequest.model_validate(
        {"customer_id": "c-000042", "decision_point": CART, "request_id": "r-old"}
    )
    service.log.remember_request(request_key(req), orjson.dumps(old).decode())
    replayed = orjson.loads(service.decide(req))
    assert replayed == {**old, "customer_known": None}
