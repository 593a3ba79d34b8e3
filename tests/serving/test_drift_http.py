"""Drift and online learning on a live uvicorn server: rewards that shift raise the alarm
in ``/metrics`` and the workspace's alarm file; with online learning a ``vw-cb`` champion
changes its answers after rewards and logs its learned-since count."""

from __future__ import annotations

import re

import numpy as np
import pytest
from live_servers import ALL_CONSENT, LiveServer, LiveServers, live_settings

from policies.registry import make_policy
from training.drift.alarms import alarm_path, alarms_since
from training.logs.dataset import LogReport, read_parquet_dir
from training.tracking import register_policy

pytestmark = pytest.mark.integration

CUSTOMERS = {f"d-{i}": {**ALL_CONSENT, "timezone": "UTC", "lifetime_value": float(i % 7)}
             for i in range(300)}  # fmt: skip


def _server(live_servers: LiveServers, home, **overrides) -> LiveServer:
    from features.source import InMemoryFeatureSource
    from serving.service.feature_layer import InMemoryFeatureLayer

    layer = InMemoryFeatureLayer(InMemoryFeatureSource(CUSTOMERS))
    return live_servers.start(live_settings(home, **overrides), layer)


def _decide(srv: LiveServer, i: int, dp: str) -> dict:
    r = srv.client.post("/decide", json={"customer_id": f"d-{i % 300}", "decision_point": dp})
    assert r.status_code == 200, r.text
    return r.json()


def _metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if m and ",".join(sorted(m.group(1).split(","))) == want:
            return float(m.group(2))
    return 0.0


def test_rewards_that_shift_raise_the_residual_alarm(tmp_path, live_servers) -> None:
    srv = _server(live_servers, tmp_path / "home", drift_window=40)  # 20 reference rewards
    dp = "default"
    rng = np.random.default_rng(0)
    alarms_at = None
    for i in range(700):
        body = _decide(srv, i, dp)
        reward = (1.0 if i < 300 else 0.0) + float(rng.normal(0, 0.2))
        r = srv.client.post("/reward", json={"event_id": body["event_id"], "reward": reward})
        assert r.status_code == 200, r.text
        if i % 20 == 19:
            text = srv.client.get("/metrics").text
            fired = _metric(text, "maestro_drift_alarms_total", decision_point=dp,
                            detector="residual")  # fmt: skip
            if fired and alarms_at is None:
                alarms_at = i
    assert alarms_at is not None, "the reward shift at decision 300 raised no alarm"
    assert alarms_at < 300 + 200  # detected within 200 rewards of the shift, no earlier
    assert alarms_at >= 300, f"false alarm at {alarms_at}, before the shift"
    text = srv.client.get("/metrics").text
    assert _metric(text, "maestro_drift_alarm", decision_point=dp, detector="residual") == 1.0
    assert _metric(text, "maestro_drift_joined_rewards_total", decision_point=dp) == 700
    written = alarms_since(alarm_path(tmp_path / "home"), 0.0)
    assert next(a.detector for a in written if a.decision_point == dp) == "residual"
    dashboard = srv.client.get("/dashboard/data").json()
    assert any(a["detector"] == "residual" for a in dashboard["drift"]["alarms"])


def test_online_learning_changes_answers_and_logs_learned_since(tmp_path, live_servers) -> None:
    home = tmp_path / "home"
    home.mkdir()
    dp = "default"
    uri = f"sqlite:///{home / 'mlflow.db'}"
    policy = make_policy("vw-cb", seed=1, epsilon=0.1)
    _, version = register_policy(policy.save(), dp, uri, kind="vw-cb", champion=True)
    srv = _server(live_servers, home, online_learning=True, online_max_updates=150)
    first = _decide(srv, 0, dp)
    assert first["policy"] == "vw-cb" and first["policy_version"] == version
    actions = [r["action_id"] for r in first["ranking"]]
    target = next(a for a in actions if a != max(first["ranking"],
                                                   key=lambda r: r["probability"])["action_id"])
    before = {r["action_id"]: r["probability"] for r in first["ranking"]}
    for i in range(1, 200):  # only the target pays: the online model must come to prefer it
        body = _decide(srv, i, dp)
        reward = 5.0 if body["action_id"] == target else 0.0
        srv.client.post("/reward", json={"event_id": body["event_id"], "reward": reward})
    after = _decide(srv, 0, dp)
    probs = {r["action_id"]: r["probability"] for r in after["ranking"]}
    assert after["policy_version"] == version  # the registered version, learning on
    assert probs[target] > before[target] + 0.3
    assert max(probs, key=probs.get) == target
    text = srv.client.get("/metrics").text
    assert _metric(text, "maestro_online_updates_total", decision_point=dp) == 150
    assert _metric(text, "maestro_online_learned_since", decision_point=dp) == 150
    assert _metric(text, "maestro_drift_alarm", decision_point=dp, detector="online_bound") == 1
    srv.service.log.roll(final=False)
    logged = read_parquet_dir(home / "logs" / "decisions", LogReport())
    logged = logged[logged["decision_point"] == dp].sort_values("timestamp")
    counts = logged["learned_since"].astype(int).tolist()
    assert counts[0] == 0 and counts[-1] == 150  # stopped at the bound: a re-gate
    assert counts == sorted(counts)
    bound = [a for a in alarms_since(alarm_path(home), 0.0) if a.detector == "online_bound"]
    assert len(bound) == 1 and bound[0].value == 150
