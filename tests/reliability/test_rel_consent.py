# ruff: noqa: E501
"""Item 5, consent under failure: random consent matrices through the real
:class:`DecisionService` (in process), rotating four modes — exploration (a uniform
champion: every eligible action is drawn), fallback (a champion that raises), feature
store outage, kill switch — must never answer an action on a channel without consent.

Default suite: 20,000 matrices; ``slow``: the issue's 100,000.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import pytest

from serving.service.decision_service import ServiceOptions

CHANNELS = ("email", "push", "sms", "in_app", "whatsapp", "call_center")
MODES = ("exploration", "fallback", "outage", "kill_switch")


class _Broken:
    """A champion whose every use raises (the fallback must answer)."""

    kind = "broken"
    version = "0"

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"broken policy: {name}")


def _run(tmp_path: Path, tracking_uri: str, n: int, seed: int) -> dict[str, Any]:
    from features.source import InMemoryFeatureSource
    from serving.api.schemas import ActionIn, DecideRequest
    from serving.factory import build_service
    from serving.service.feature_layer import InMemoryFeatureLayer
    from serving.service.policy_store import LoadedPolicy
    from serving.settings import Settings

    settings = Settings(
        home=tmp_path / "home",
        mlflow_tracking_uri=tracking_uri,
        cold_start_kind="uniform",
        feature_source="memory",
        roll_seconds=3600,
        time_budget_ms=10_000,  # the budget's own fallback is tested elsewhere
    )
    layer = InMemoryFeatureLayer(InMemoryFeatureSource({}))
    service = build_service(settings, layer)
    service.experiments = None
    service.start()
    rng = random.Random(seed)
    points = [p for p in service.catalog.names() if p != "agent_routing"]
    broken = LoadedPolicy(_Broken(), "0", "champion")  # type: ignore[arg-type]
    real_get = service.policies.get
    menus: dict[str, list[list[ActionIn]]] = {}
    for name in points:
        acts = [ActionIn(id=a.id, channel=a.channel, features=dict(a.features))
                for a in service.catalog[name].actions]
        menus[name] = [acts] + [rng.sample(acts, rng.randint(1, len(acts))) for _ in range(5)]
    stats = {"decisions": 0, "violations": 0, "by_mode": {m: 0 for m in MODES},
             "answered_contact": 0, "outage_not_degraded": 0, "no_action": 0, "degraded": 0, "denied_excluded": 0}
    try:
        for i in range(n):
            mode = MODES[i % len(MODES)]
            cid = f"r-{i % 500:04d}"
            matrix = {c: rng.random() < 0.5 for c in CHANNELS}
            layer.source.update(cid, {f"consent_{c}": v for c, v in matrix.items()})
            layer.available = mode != "outage"
            service.options = ServiceOptions(time_budget_ms=10_000, kill_switch=mode == "kill_switch")
            service.policies.get = (lambda _dp: broken) if mode == "fallback" else real_get  # type: ignore[method-assign]
            point = rng.choice(points)
            menu = rng.choice(menus[point]) if rng.random() < 0.7 else None
            req = DecideRequest(customer_id=cid, decision_point=point, actions=menu)
            answer = json.loads(service.decide(req))
            stats["decisions"] += 1
            stats["by_mode"][mode] += 1
            stats["degraded"] += int(answer["degraded"])
            if mode == "outage" and not answer["degraded"]:
                stats["outage_not_degraded"] += 1
            needs = service.catalog[point].rules.consent_channels
            channel = answer["channel"]
            if answer["action_id"] is None:
                stats["no_action"] += 1
            elif channel in needs:
                stats["answered_contact"] += 1
                if not matrix.get(channel, False):
                    stats["violations"] += 1
            for r in answer["ranking"]:  # nothing on a denied channel is even ranked
                ch = next(a.channel for a in (menu or service.catalog[point].actions)
                          if a.id == r["action_id"])
                if ch in needs and not matrix.get(ch, False) and r["probability"] > 0:
                    stats["violations"] += 1
            stats["denied_excluded"] += sum(
                1 for e in answer["excluded"] if e["reason"].startswith("no_consent:")
            )
    finally:
        service.policies.get = real_get  # type: ignore[method-assign]
        layer.available = True
        service.close()
    return stats


def _check(tmp_path: Path, rel_server: Any, figure: Any, n: int, tag: str) -> None:
    start = time.perf_counter()
    stats = _run(tmp_path, rel_server.settings.tracking_uri, n, seed=2026)
    stats["seconds"] = round(time.perf_counter() - start, 1)
    figure(f"consent.{tag}", stats)
    assert stats["decisions"] == n
    assert stats["violations"] == 0
    assert stats["answered_contact"] > n // 10  # contact actions were really answered
    assert stats["outage_not_degraded"] == 0  # every outage answer says degraded
    assert stats["degraded"] >= n // 3  # ... and the broken champion's fallback too
    assert stats["denied_excluded"] > n // 2


def test_consent_holds_under_failure_20k(tmp_path: Path, rel_server: Any, figure: Any) -> None:
    _check(tmp_path, rel_server, figure, 20_000, "matrices_20k")


@pytest.mark.slow
def test_consent_holds_under_failure_100k(tmp_path: Path, rel_server: Any, figure: Any) -> None:
    _check(tmp_path, rel_server, figure, 100_000, "matrices_100k")
