"""Caps and budgets hold exactly with 4 OS processes deciding at once, on SQLite and on a real
redis-server: 1,000 decisions for one customer never exceed a cap in any sliding window, and
a budget of 500 is never overspent across 10 runs and used in full when demand exceeds it."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

WORKERS = 4
DECISIONS = 1000
RUNS = 10
BUDGET = 500
BUDGET_DEMAND = 150  # per worker and run: 600 asked for 500 units
WORKER = Path(__file__).parents[1] / "support" / "contact_worker.py"
# push: at most 2 in any 0.6 s, so the window slides during the run (each worker pauses
# PAUSE between decisions: the run lasts about 4 s)
CAPS = {"email": ("7d", 3), "push": ("0.01m", 2), "any": ("24h", 8)}
PAUSE = 0.015
SMS_COOLDOWN = 3.0  # seconds: 0.05m


def catalog_yaml() -> str:
    budgets = "\n".join(
        f"""  budget{r}:
    rules: {{frequency_caps: []}}
    actions:
      - {{id: coupon{r}, channel: in_app, features: {{category: marketing, offer: c{r}}},
         budget: {{max: {BUDGET}, per: campaign}}}}"""
        for r in range(RUNS)
    )
    return f"""
defaults:
  rules:
    consent_channels: [email, push, sms]
decision_points:
  default:
    actions:
      - {{id: no_contact, channel: none}}
  capped:
    rules:
      frequency_caps:
        - {{channel: email, window: 7d, max: 3}}
        - {{channel: push, window: 0.01m, max: 2}}
        - {{channel: any, window: 24h, max: 8, categories: [marketing]}}
      cooldowns: [{{window: 0.05m, categories: [service]}}]
    actions:
      - {{id: email_offer, channel: email, features: {{category: marketing, offer: e}}}}
      - {{id: push_offer, channel: push, features: {{category: marketing, offer: p}}}}
      - {{id: sms_help, channel: sms, features: {{category: service, offer: s}}}}
      - {{id: no_contact, channel: none, features: {{category: none}}}}
{budgets}
"""


def run_workers(spec: dict, tmp_path: Path) -> list[dict]:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(catalog_yaml())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    start_at = time.time() + 8.0  # every worker imported before the first decision
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), json.dumps({
                **spec, "catalog": str(catalog), "customer": "c-hot", "worker": w,
                "n": DECISIONS // WORKERS, "budget_points": [f"budget{r}" for r in range(RUNS)],
                "budget_n": BUDGET_DEMAND, "start_at": start_at, "pause": PAUSE,
            })],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
        )
        for w in range(WORKERS)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_caps_and_budgets_hold_across_processes(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "sqlite":
        spec = {"store": "sqlite", "path": str(tmp_path / "contacts.db")}
    else:
        port = request.getfixturevalue("redis_server")
        spec = {"store": "redis", "url": f"redis://127.0.0.1:{port}/0",
                "prefix": f"cc{uuid.uuid4().hex}:"}
    results = run_workers(spec, tmp_path)

    answered = sorted(a for r in results for a in r["contacts"])
    store = _open(spec)
    history = sorted(store.read("c-hot", 0.0, (), time.time()).history)
    store.close()
    # every contacting answer is in the history exactly once, and nothing else is
    assert sorted(c.action_id for c in history) == answered
    assert sum(c.channel == "email" for c in history) == CAPS["email"][1]
    _assert_sliding(history, "push", 0.6, CAPS["push"][1])
    assert sum(c.category == "marketing" for c in history) == CAPS["any"][1]
    sms = [c.ts for c in history if c.category == "service"]
    assert all(b - a >= SMS_COOLDOWN for a, b in itertools.pairwise(sms))
    assert len(sms) >= 2  # the cool-down let sms through again once it had passed

    for r in range(RUNS):
        spent = sum(res["budgeted"][f"budget{r}"] for res in results)
        assert spent == BUDGET, f"run {r}: {spent} coupons for a budget of {BUDGET}"


def _assert_sliding(history: list, channel: str, window: float, cap: int) -> None:
    times = [c.ts for c in history if c.channel == channel]
    assert len(times) > cap  # the window slid: more than cap in the whole run
    for i, t in enumerate(times):
        inside = [u for u in times[: i + 1] if t - u < window]
        assert len(inside) <= cap, f"{len(inside)} {channel} contacts within {window} s"


def _open(spec: dict):  # type: ignore[no-untyped-def]
    if spec["store"] == "sqlite":
        from serving.state.contacts_sqlite import SQLiteContactStore

        return SQLiteContactStore(Path(spec["path"]))
    from serving.state.contacts_redis import RedisContactStore

    return RedisContactStore(spec["url"], prefix=spec["prefix"])
