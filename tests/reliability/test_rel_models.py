"""Item 8, bad models: promoting a corrupt artefact (garbage bytes, a truncated model)
never replaces the serving policy; moving the ``champion`` alias back and forth while
clients send decisions fails 0 requests. Real MLflow registry, live uvicorn server."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration
POINT = "churn_risk"


def _serving_version(srv: Any) -> str:
    return srv.service.policies.get(POINT).version


def _wait_for(predicate: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _load_errors(srv: Any) -> float:
    text = httpx.get(srv.base_url + "/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("maestro_policy_load_errors_total") and POINT in line
    )


def test_corrupt_artefacts_never_replace_the_champion(rel_server: Any, figure: Any) -> None:
    from policies.registry import make_policy
    from training.tracking import register_policy

    uri = rel_server.settings.tracking_uri
    good = make_policy("linucb").save()
    _, v_good = register_policy(good, POINT, uri, kind="linucb", champion=True)
    assert _wait_for(lambda: _serving_version(rel_server) == v_good)
    errors_before = _load_errors(rel_server)
    promoted = []
    for blob in (b"\x00garbage, not a model", good[: len(good) // 2], b""):
        _, v_bad = register_policy(blob, POINT, uri, kind="linucb", champion=True)
        promoted.append(v_bad)
        assert _wait_for(lambda e=errors_before: _load_errors(rel_server) > e, timeout=30)
        errors_before = _load_errors(rel_server)
        for _ in range(20):
            r = rel_server.client.post("/decide", json={"customer_id": "c-all",
                                                        "decision_point": POINT})
            assert r.status_code == 200, r.text
            body = r.json()
            assert (body["policy"], body["policy_version"], body["degraded"]) == (
                "linucb", v_good, False)
    figure("models.corrupt_promotions", len(promoted))
    figure("models.corrupt_served", 0)
    figure("models.serving_version_kept", v_good)


def test_champion_switching_under_load_fails_nothing(rel_server: Any, figure: Any) -> None:
    from policies.registry import make_policy
    from training.tracking import register_policy, set_champion

    uri = rel_server.settings.tracking_uri
    _, v_a = register_policy(make_policy("uniform").save(), POINT, uri, kind="uniform",
                             champion=True)
    _, v_b = register_policy(make_policy("linucb").save(), POINT, uri, kind="linucb")
    assert _wait_for(lambda: _serving_version(rel_server) == v_a)
    stop = threading.Event()
    statuses: Counter[int] = Counter()
    versions: Counter[str] = Counter()
    errors: list[str] = []
    degraded = [0]  # time budget spent on a loaded machine: answered by the fallback

    def load() -> None:
        with httpx.Client(base_url=rel_server.base_url, headers=dict(rel_server.client.headers),
                          timeout=30) as c:
            while not stop.is_set():
                try:
                    r = c.post("/decide", json={"customer_id": "c-all", "decision_point": POINT})
                    statuses[r.status_code] += 1
                    if r.status_code == 200:
                        body = r.json()
                        versions[body["policy_version"]] += 1
                        degraded[0] += int(body["degraded"])
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    swaps = 0
    try:
        for i in range(10):
            target = v_b if i % 2 == 0 else v_a
            set_champion(POINT, target, uri)
            assert _wait_for(lambda t=target: _serving_version(rel_server) == t, timeout=30)
            swaps += 1
            time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    total = sum(statuses.values())
    figure("models.switches_under_load", swaps)
    figure("models.requests_during_switching", total)
    figure("models.failed_requests", total - statuses[200] + len(errors))
    figure("models.answers_by_version", dict(versions))
    figure("models.degraded_answers_during_switching", degraded[0])
    assert errors == [] and set(statuses) == {200}
    assert versions[v_a] > 0 and versions[v_b] > 0
