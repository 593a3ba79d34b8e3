"""Champions from a real MLflow SQLite registry: cold start, hot swap, broken artefacts."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from policies.catalog import load_catalog, parse_catalog
from policies.draw import decide
from policies.registry import load_policy, make_policy
from policies.types import Context
from serving.service.policy_store import PolicyStore, ensure_cold_start_champions
from training.tracking import champion_version, load_champion_bytes, register_policy, set_champion

pytestmark = pytest.mark.integration


def _wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_hot_swap_and_broken_artefact_never_replaces(server) -> None:
    uri = server.tracking_uri
    dp = "onboarding"
    policy = make_policy("linucb", seed=3)
    _, version = register_policy(policy.save(), dp, uri, kind="linucb", champion=True)

    def serving_version() -> tuple[str, str]:
        body = server.client.post(
            "/decide", json={"customer_id": "c-all", "decision_point": dp}
        ).json()
        return body["policy"], body["policy_version"]

    # the poller (0.5 s here, <= 10 s by contract) swaps it in without a failed request
    assert _wait_for(lambda: serving_version() == ("linucb", version), timeout=10)

    # a broken artefact is registered and made champion: the running policy stays
    _, bad = register_policy(b"definitely not a policy", dp, uri, kind="linucb", champion=True)
    errors_before = server.client.get("/metrics").text.count("maestro_policy_load_errors_total")
    time.sleep(2.0)
    for _ in range(20):
        r = server.client.post("/decide", json={"customer_id": "c-all", "decision_point": dp})
        assert r.status_code == 200 and r.json()["policy_version"] == version
    metrics = server.client.get("/metrics").text
    assert f'maestro_policy_load_errors_total{{decision_point="{dp}"}}' in metrics
    assert errors_before >= 0 and bad != version

    # rollback to a good version by moving the alias
    set_champion(dp, version, uri)
    rules = make_policy("rules")
    _, v3 = register_policy(rules.save(), dp, uri, kind="rules", champion=True)
    assert _wait_for(lambda: serving_version() == ("rules", v3), timeout=10)


def test_cold_start_champions_are_registered_once(tmp_path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    catalog = parse_catalog(
        {
            "decision_points": {
                "default": load_catalog().decision_points["default"].__dict__
                and {
                    "actions": [
                        {
                            "id": "email_newsletter",
                            "channel": "email",
                            "features": {"category": "marketing"},
                        },
                        {"id": "no_contact", "channel": "none", "features": {"category": "none"}},
                    ],
                    "journey_priority": ["email_newsletter", "no_contact"],
                }
            }
        }
    )
    assert champion_version("default", uri) is None
    assert ensure_cold_start_champions(catalog, uri, kind="rules") == {"default": "1"}
    assert ensure_cold_start_champions(catalog, uri, kind="rules") == {}
    data, ref = load_champion_bytes("default", uri)
    assert ref.version == "1" and ref.kind == "rules"

    store = PolicyStore(catalog, uri, poll_seconds=10).start()
    try:
        loaded = store.get("default")
        assert loaded.source == "champion" and loaded.version == "1"
        assert loaded.policy.save() != b"" and loaded.policy.kind == "rules"
        assert loaded.policy.priorities == {"default": ["email_newsletter", "no_contact"]}
    finally:
        store.stop()

    # the same version loads as an MLflow pyfunc whose load_context reads the bytes
    import mlflow.pyfunc

    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model("models:/maestro-default@champion")
    pmf = model.predict(
        pd.DataFrame(
            [
                {
                    "customer_id": "c-1",
                    "decision_point": "default",
                    "customer": {},
                    "context": {},
                    "actions": [
                        {"id": "email_newsletter", "channel": "email", "features": {}},
                        {"id": "no_contact", "channel": "none", "features": {}},
                    ],
                }
            ]
        )
    )
    assert len(pmf) == 1 and abs(sum(pmf[0]) - 1.0) < 1e-9 and pmf[0][0] > pmf[0][1]
    assert data[:8] == b"MAESTRO1"


def test_no_registry_champion_means_cold_start(tmp_path) -> None:
    catalog = load_catalog()
    store = PolicyStore(catalog, None, cold_start_kind="uniform").start()
    assert {store.get(n).source for n in catalog.names()} == {"cold_start"}
    assert store.get("default").policy.kind == "uniform"
    assert store.get("unknown-dp").source == "fallback"


def test_every_policy_serves_with_the_catalogs_exploration_budget(tmp_path) -> None:
    """The cold start is registered with the decision point's floor; a champion registered
    with less is raised to it when the service loads it; the served pmf is the floored one."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    actions = [
        {"id": "email_newsletter", "channel": "email", "features": {"category": "marketing"}},
        {"id": "no_contact", "channel": "none", "features": {"category": "none"}},
    ]
    catalog = parse_catalog(
        {
            "decision_points": {
                "default": {"actions": actions, "exploration_floor": 0.4},
                "other": {"actions": actions, "exploration_floor": 0.1},
            }
        }
    )
    ensure_cold_start_champions(catalog, uri, kind="rules")
    cold = load_policy(load_champion_bytes("default", uri)[0])
    assert cold.exploration_floor == 0.4
    assert load_policy(load_champion_bytes("other", uri)[0]).exploration_floor == 0.1
    low = make_policy("rules", priorities=catalog.journey_priorities(), exploration_floor=0.05)
    register_policy(low.save(), "default", uri, kind="rules", params=low.params, champion=True)
    store = PolicyStore(catalog, uri, poll_seconds=10).start()
    try:
        served = store.get("default")
        assert served.version == "2" and served.policy.exploration_floor == 0.4
        ctx_actions = list(catalog["default"].actions)
        d = decide(served.policy, Context("c-1", decision_point="default"), ctx_actions, 3)
        assert [r.probability for r in d.ranking] == pytest.approx([0.8, 0.2], abs=1e-12)
        assert d.probability in (pytest.approx(0.8), pytest.approx(0.2))
    finally:
        store.stop()
