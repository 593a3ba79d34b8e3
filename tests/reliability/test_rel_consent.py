# ruff: noqa: E501
"""Item 5, consent and contact policy under failure: random consent matrices, random
contact histories (outside ``message_sent`` events up to 10 days old) and random budgets
through the real :class:`DecisionService` (in process, its SQLite contact store), rotating
four modes — exploration (a uniform champion: every eligible action is drawn), fallback (a
champion that raises), feature store outage, kill switch — must never answer (or rank) an
action on a channel without consent, over a cap, inside a cool-down, repeating an offer, or
over its budget. Caps and budgets are re-counted here from the history read before each
decision, by code independent of the service's.

Default suite: 20,000 decisions; ``slow``: the issue's 100,000.
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from serving.service.decision_service import ServiceOptions

CHANNELS = ("email", "push", "sms", "in_app", "whatsapp", "call_center")
MODES = ("exploration", "fallback", "outage", "kill_switch")
#: decisions per customer (each size keeps the same density, so caps bind alike)
PER_CUSTOMER = 10
DAY = 86_400.0
UNIT = {"m": 60.0, "h": 3600.0, "d": DAY, "w": 7 * DAY}


def _catalog(home: Path, rng: random.Random, n: int) -> Path:
    """The shipped catalog plus a cool-down, offer repetition, a cross-channel cap and random
    budgets on two actions of every decision point (sized to ``n`` decisions: some run out,
    most do not)."""
    from importlib import resources

    data = yaml.safe_load(resources.files("policies").joinpath("catalog.yaml").read_text())
    rules = data["defaults"]["rules"]
    rules["frequency_caps"].append(
        {"channel": "any", "window": "24h", "max": 2, "categories": ["marketing"]})
    rules["cooldowns"] = [{"window": "12h", "categories": ["service"]}]
    rules["offer_repeat"] = "3d"
    for name, point in data["decision_points"].items():
        contacting = [a for a in point["actions"] if a["channel"] != "none"]
        for action in rng.sample(contacting, min(2, len(contacting))) if name != "agent_routing" else []:
            action["budget"] = {"max": rng.randint(100, 400) * n // 20_000, "per": rng.choice(["day", "week", "campaign"])}
    home.mkdir(parents=True, exist_ok=True)
    path = home / "catalog.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _seconds(window: str) -> float:
    return float(window[:-1]) * UNIT[window[-1]]


def _breaks(point: Any, action: Any, history: Any, now: float) -> str | None:
    """The contact rule ``action`` would break given ``history``, counted independently."""
    if action.channel in ("none", "agent"):
        return None
    category, offer = action.features.get("category"), action.features.get("offer")
    rules = point.rules.contact
    for cap in rules.caps:
        if cap.channel not in ("any", action.channel):
            continue
        if cap.categories is not None and category not in cap.categories:
            continue
        recent = [c for c in history if now - c.ts < _seconds(cap.window)
                  and cap.channel in ("any", c.channel)
                  and (cap.categories is None or c.category in cap.categories)]
        if len(recent) >= cap.max:
            return f"cap:{cap.channel}:{cap.window}"
    for down in rules.cooldowns:
        if (down.categories is None or category in down.categories) and any(
            now - c.ts < _seconds(down.window)
            and (down.categories is None or c.category in down.categories) for c in history
        ):
            return "cooldown"
    if rules.offer_repeat and offer not in (None, "none") and any(
        now - c.ts < _seconds(rules.offer_repeat) and c.offer == offer for c in history
    ):
        return "repeat"
    return None


def _outside_contacts(service: Any, rng: random.Random, cid: str, actions: list, now: float) -> None:
    from serving.api.schemas import EventRequest

    for _ in range(rng.randint(1, 3)):
        a = rng.choice(actions)
        when = datetime.fromtimestamp(now - rng.uniform(60.0, 10 * DAY), UTC)
        service.ingest(EventRequest(customer_id=cid, type="message_sent", timestamp=when,
                                    properties={"channel": a.channel, "action_id": a.id}))


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

    rng = random.Random(seed)
    settings = Settings(
        home=tmp_path / "home",
        catalog_path=_catalog(tmp_path / "home", rng, n),
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
    store = service.contacts.store
    points = [p for p in service.catalog.names() if p != "agent_routing"]
    broken = LoadedPolicy(_Broken(), "0", "champion")  # type: ignore[arg-type]
    real_get = service.policies.get
    menus: dict[str, list[list[ActionIn]]] = {}
    for name in points:
        acts = [ActionIn(id=a.id, channel=a.channel, features=dict(a.features))
                for a in service.catalog[name].actions]
        menus[name] = [acts] + [rng.sample(acts, rng.randint(1, len(acts))) for _ in range(5)]
    stats = {"decisions": 0, "violations": 0, "by_mode": {m: 0 for m in MODES},
             "answered_contact": 0, "outage_not_degraded": 0, "no_action": 0, "degraded": 0, "denied_excluded": 0,
             "contact_excluded": 0, "budget_excluded": 0, "outside_contacts": 0}
    budgeted: dict[str, int] = {}  # budget bucket → answers that took it
    contacting = [a for p in points for a in service.catalog[p].actions if a.channel not in ("none", "agent")]
    try:
        for i in range(n):
            mode = MODES[i % len(MODES)]
            cid = f"r-{i % (n // PER_CUSTOMER):06d}"
            matrix = {c: rng.random() < 0.5 for c in CHANNELS}
            layer.source.update(cid, {f"consent_{c}": v for c, v in matrix.items()})
            layer.available = mode != "outage"
            service.options = ServiceOptions(time_budget_ms=10_000, kill_switch=mode == "kill_switch")
            service.policies.get = (lambda _dp: broken) if mode == "fallback" else real_get  # type: ignore[method-assign]
            point = rng.choice(points)
            menu = rng.choice(menus[point]) if rng.random() < 0.7 else None
            req = DecideRequest(customer_id=cid, decision_point=point, actions=menu)
            now = time.time()
            if rng.random() < 0.3:
                _outside_contacts(service, rng, cid, contacting, now)
                stats["outside_contacts"] += 1
            history = store.read(cid, 0.0, (), now).history
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
            stats["violations"] += _policy_violations(
                service.catalog[point], menu, answer, history, now, matrix, budgeted)
            reasons = [e["reason"] for e in answer["excluded"]]
            stats["denied_excluded"] += sum(r.startswith("no_consent:") for r in reasons)
            stats["contact_excluded"] += sum(r.startswith(("cap:", "cooldown:", "repeat:")) for r in reasons)
            stats["budget_excluded"] += sum(r.startswith("budget:") for r in reasons)
        for bucket, n_taken in budgeted.items():  # never more answers than units
            action_id = bucket.split(":")[0]
            limit = next(p.budgets[action_id].max for p in service.catalog.decision_points.values()
                         if action_id in p.budgets)
            stats["violations"] += int(n_taken > limit or store.used([bucket], time.time())[bucket] > limit)
    finally:
        service.policies.get = real_get  # type: ignore[method-assign]
        layer.available = True
        service.close()
    return stats


def _policy_violations(point: Any, menu: Any, answer: dict, history: Any, now: float,
                       matrix: dict, budgeted: dict[str, int]) -> int:
    """Ranked (probability > 0) or answered actions that break consent or the contact
    policy; counts the answer's budget bucket."""
    from policies.contact_rules import budget_period_key
    from policies.types import Action

    needs = point.rules.consent_channels
    by_id = {a.id: a for a in point.actions}
    for a in menu or ():
        by_id[a.id] = Action(a.id, a.channel, dict(a.features))
    bad = 0
    for r in answer["ranking"]:
        action = by_id[r["action_id"]]
        if r["probability"] <= 0:
            continue
        if action.channel in needs and not matrix.get(action.channel, False):
            bad += 1
        if _breaks(point, action, history, now) is not None:
            bad += 1
    chosen = answer["action_id"]
    if chosen is not None and chosen in point.budgets:
        bucket = budget_period_key(chosen, point.budgets[chosen].per, now)
        budgeted[bucket] = budgeted.get(bucket, 0) + 1
    return bad


def _check(tmp_path: Path, rel_server: Any, figure: Any, n: int, tag: str) -> None:
    start = time.perf_counter()
    stats = _run(tmp_path, rel_server.settings.tracking_uri, n, seed=2026)
    stats["seconds"] = round(time.perf_counter() - start, 1)
    figure(f"consent.{tag}", stats)
    assert stats["decisions"] == n
    assert stats["violations"] == 0
    # contact actions were really answered (fewer than without the contact policy: ~10
    # decisions per customer, with random histories, meet the caps and cool-downs)
    assert stats["answered_contact"] > n // 20
    assert stats["outage_not_degraded"] == 0  # every outage answer says degraded
    assert stats["degraded"] >= n // 3  # ... and the broken champion's fallback too
    assert stats["denied_excluded"] > n // 2
    assert stats["contact_excluded"] > n // 10  # the caps and cool-downs really bound
    assert stats["budget_excluded"] > 0  # ... and budgets ran out


def test_consent_holds_under_failure_20k(tmp_path: Path, rel_server: Any, figure: Any) -> None:
    _check(tmp_path, rel_server, figure, 20_000, "matrices_20k")


@pytest.mark.slow
def test_consent_holds_under_failure_100k(tmp_path: Path, rel_server: Any, figure: Any) -> None:
    _check(tmp_path, rel_server, figure, 100_000, "matrices_100k")
