"""The decision service's experiment hook, in process (no registry, no HTTP): unchanged
without a config; the holdout is deterministic even when the feature store is down."""

from __future__ import annotations

from pathlib import Path

import orjson
import pandas as pd
import pytest

from features.source import InMemoryFeatureSource
from policies.catalog import load_catalog
from serving.api.schemas import DecideRequest
from serving.dashboard.live import dashboard_data
from serving.eventlog.log import EventLog
from serving.experiments.variants import AssignmentTable, Experiments, parse_experiments, unit_hash
from serving.service.decision_service import DecisionService
from serving.service.feature_layer import InMemoryFeatureLayer
from serving.service.ids import EventIdSigner
from serving.service.policy_store import PolicyStore
from training.lift import experiment_report

CONSENT = {f"consent_{c}": True for c in ("email", "push", "sms", "in_app", "whatsapp")}


def _service(tmp_path: Path, experiments: Experiments | None) -> DecisionService:
    catalog = load_catalog(None)
    rows = {f"c-{i}": {**CONSENT, "timezone": "UTC"} for i in range(300)}
    layer = InMemoryFeatureLayer(InMemoryFeatureSource(rows))
    return DecisionService(
        catalog=catalog, features=layer, writer=layer, policies=PolicyStore(catalog, None),
        log=EventLog(tmp_path / "logs", roll_seconds=60), signer=EventIdSigner(b"k" * 32),
        experiments=experiments,
    ).start()


def _decide(service: DecisionService, cid: str, dp: str = "cart_abandoned",
            actions: list[dict] | None = None) -> dict:
    body = {"customer_id": cid, "decision_point": dp, "context": {}}
    if actions is not None:
        body["actions"] = actions
    return orjson.loads(service.decide(DecideRequest.model_validate(body)))


def test_without_experiments_every_decision_is_champion(tmp_path: Path) -> None:
    service = _service(tmp_path, None)
    for i in range(60):
        _decide(service, f"c-{i}")
    data = dashboard_data(service, None)
    service.close()
    frame = pd.read_parquet(tmp_path / "logs" / "decisions")
    assert set(frame["variant"]) == {"champion"}
    report = experiment_report(tmp_path / "logs", service.catalog)
    variants = report["decision_points"]["cart_abandoned"]["variants"]
    assert [v["variant"] for v in variants] == ["champion"]
    assert variants[0]["decisions"] == 60 and variants[0]["lift"] == {}
    assert data["decisions_total"] == 60 and data["variants"] == {"champion": 60}
    assert len(data["champions"]) == len(service.catalog.names())


def test_holdout_is_no_contact_with_probability_one_even_degraded(tmp_path: Path) -> None:
    catalog = load_catalog(None)
    config = parse_experiments({"salt": "x", "holdout": 0.3}, catalog)
    exp = Experiments(config, catalog, AssignmentTable(tmp_path / "exp.db"))
    service = _service(tmp_path, exp)
    held = [f"c-{i}" for i in range(300) if unit_hash("x", "holdout", f"c-{i}") < 0.3]
    kept = [f"c-{i}" for i in range(300) if unit_hash("x", "holdout", f"c-{i}") >= 0.3]
    answer = _decide(service, held[0])
    assert answer["action_id"] == "no_contact" and answer["probability"] == 1.0
    assert answer["policy"] == "holdout" and answer["degraded"] is False
    assert sum(r["probability"] for r in answer["ranking"]) == pytest.approx(1.0)
    assert len(answer["ranking"]) > 1  # every eligible action, the others at 0
    # rules still run for the holdout: consent is missing for call_center
    assert {"action_id": "call_center_assist", "reason": "no_consent:call_center"} in answer[
        "excluded"
    ]
    service.features.available = False  # type: ignore[attr-defined]
    degraded = _decide(service, held[1])
    assert degraded["action_id"] == "no_contact" and degraded["degraded"] is True
    other = _decide(service, kept[0])
    assert other["degraded"] is True and other["policy"] == "rules"
    service.features.available = True  # type: ignore[attr-defined]
    # a request without no_contact: the held-out customer gets nothing, still held out
    own = [{"id": "email_x", "channel": "email", "features": {"category": "marketing"}}]
    nothing = _decide(service, held[2], actions=own)
    assert nothing["action_id"] is None
    # agent routing has no no_contact in its catalog: exempt
    assert exp.variant_of(held[0], "agent_routing") == "champion"
    service.close()
    frame = pd.read_parquet(tmp_path / "logs" / "decisions").set_index("customer_id")
    assert frame.loc[held[1], "variant"] == "holdout" and frame.loc[held[1], "degraded"]
    assert frame.loc[kept[0], "variant"] == "champion"  # intent to treat, degraded or not


def test_the_rules_arm_explores_with_the_catalogs_floor(tmp_path: Path) -> None:
    """The ``rules`` variant logs with the decision point's exploration floor from the
    catalog (0.3 by default), not the ``rules`` policy's own 0.05: every eligible action
    the journey does not pick has probability floor / eligible."""
    catalog = load_catalog(None)
    floor = catalog["cart_abandoned"].exploration_floor
    assert floor == pytest.approx(0.3, abs=1e-12)
    config = parse_experiments(
        {"salt": "x", "decision_points": {"cart_abandoned": {"variants": {"rules": 1.0}}}},
        catalog,
    )
    exp = Experiments(config, catalog, AssignmentTable(tmp_path / "exp.db"))
    assert exp.assign("c-1", "cart_abandoned").loaded.policy.exploration_floor == floor
    service = _service(tmp_path, exp)
    for i in range(5):
        answer = _decide(service, f"c-{i}")
        assert answer["policy"] == "rules" and answer["degraded"] is False
        probs = sorted(r["probability"] for r in answer["ranking"])
        k = len(probs)
        assert probs[0] == pytest.approx(floor / k, abs=1e-9)
        assert probs[-1] == pytest.approx(1 - floor + floor / k, abs=1e-9)
    service.close()
