"""Triggers end to end on a real uvicorn server process on 127.0.0.1, delivering to a real
webhook receiver: "a VIP on the pricing page for N seconds" is decided (logged like any
decision) and received, signed, with the decision's event id as idempotency key; a non-VIP
is not, nor a VIP who views another page; a trigger without a dwell fires at once (no
contact: logged, not delivered); and kill -9 of the service with 100 pending timers, then a
restart: all 100 fire and are received, each once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from live_servers import free_port, wait_http
from webhook_receiver import WebhookReceiver

SERVER = Path(__file__).parents[1] / "support" / "trigger_server.py"
DWELL = 2.0
SECRET = "trigger-e2e-secret"
CATALOG = """
defaults:
  reward_window_hours: 24
  rules: {consent_channels: [email]}
decision_points:
  default:
    actions:
      - {id: no_contact, channel: none, features: {category: none}}
  vip_call:
    actions:
      - {id: email_am, channel: email, features: {category: service, offer: none}}
  billing:
    actions:
      - {id: no_contact, channel: none, features: {category: none}}
"""
TRIGGERS = """
segments:
  vip: "customer.lifetime_value > 2000"
destinations:
  crm_hook: {{webhook: "{url}", secret_env: TRIGGER_E2E_SECRET}}
triggers:
  vip_on_pricing:
    on: {{type: page_view, when: ["event.properties.page == 'pricing'", "segment.vip"]}}
    dwell: {{seconds: {dwell}, cancel_on: [{{type: page_view}}]}}
    decide: {{decision_point: vip_call}}
    deliver: crm_hook
  overdue:
    on: {{type: invoice_overdue}}
    decide: {{decision_point: billing}}
    deliver: crm_hook
"""


class Server:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(base_url=self.base, timeout=10)

    def start(self) -> Server:
        env = {**os.environ, "TRIGGER_E2E_SECRET": SECRET, "PYTHONPATH": os.pathsep.join(
            [str(Path.cwd()), str(SERVER.parent)])}
        self.proc = subprocess.Popen([sys.executable, str(SERVER), str(self.home),
                                      str(self.port)], env=env)
        deadline = time.time() + 120
        while True:
            assert self.proc.poll() is None, "the server process exited at start-up"
            try:
                wait_http(f"{self.base}/healthz", timeout=1.0)
                return self
            except TimeoutError:
                assert time.time() < deadline, "the server did not come up"

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=60)
        self.proc = None

    def event(self, customer: str, kind: str, **props: object) -> None:
        r = self.client.post("/events", json={"customer_id": customer, "type": kind,
                                              "properties": props})
        assert r.status_code == 202, r.text

    def metric(self, name: str) -> float:
        text = self.client.get("/metrics").text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name + "{") or line.startswith(name + " "))


def trigger_rows(home: Path) -> pd.DataFrame:
    frame = pd.read_parquet(home / "logs" / "decisions")
    return frame[frame["request_id"].fillna("").str.startswith("trigger:")]


def bodies(receiver: WebhookReceiver) -> list[dict]:
    """What the receiver got, each checked against the secret."""
    got = list(receiver.received)
    assert all(r.verifies(SECRET.encode()) for r in got)
    return [json.loads(r.body) for r in got]


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver().start()
    yield r
    r.stop()


@pytest.fixture
def home(tmp_path: Path, receiver: WebhookReceiver) -> Path:
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    (tmp_path / "triggers.yaml").write_text(TRIGGERS.format(url=receiver.url, dwell=DWELL))
    return tmp_path


@pytest.fixture
def server(home: Path) -> Iterator[Server]:
    srv = Server(home).start()
    yield srv
    srv.stop(signal.SIGKILL)


def test_vip_on_pricing_fires_non_vip_and_leavers_do_not(
    server: Server, home: Path, receiver: WebhookReceiver
) -> None:
    server.event("vip-1", "page_view", page="pricing")  # stays: fires
    server.event("plain-1", "page_view", page="pricing")  # not a VIP
    server.event("vip-2", "page_view", page="pricing")  # leaves the page
    server.event("vip-3", "page_view", page="home")  # never on pricing
    time.sleep(DWELL / 2)
    server.event("vip-2", "page_view", page="home")
    time.sleep(DWELL / 2 + 1.5)
    assert server.metric("maestro_trigger_timers_scheduled_total") == 2
    assert server.metric("maestro_trigger_timers_cancelled_total") == 1
    assert server.metric("maestro_trigger_timers_fired_total") == 1
    receiver.wait_for(1, timeout=10)
    server.stop()  # graceful: the log rolls to Parquet
    rows = trigger_rows(home)
    assert list(rows["customer_id"]) == ["vip-1"]
    row = rows.iloc[0]
    assert row["decision_point"] == "vip_call" and row["action_id"] == "email_am"
    assert row["segments"] is not None and list(row["segments"]) == ["vip"]
    (got,) = bodies(receiver)
    assert (got["trigger"], got["customer_id"]) == ("vip_on_pricing", "vip-1")
    assert got["decision"]["event_id"] == row["event_id"]
    assert got["decision"]["action_id"] == "email_am" and got["delivered_at"]
    assert receiver.delivered_keys() == [row["event_id"]]


def test_a_trigger_without_dwell_fires_at_once_and_no_contact_is_not_delivered(
    server: Server, home: Path, receiver: WebhookReceiver
) -> None:
    start = time.time()
    server.event("plain-5", "invoice_overdue")
    while server.metric("maestro_trigger_timers_fired_total") < 1:
        assert time.time() - start < 5, "the trigger did not fire"
        time.sleep(0.02)
    assert time.time() - start < 1.0  # at once, not after a poll of seconds
    server.stop()
    rows = trigger_rows(home)
    assert list(rows["customer_id"]) == ["plain-5"] and rows.iloc[0]["action_id"] == "no_contact"
    assert receiver.received == []


def test_kill_9_with_100_pending_timers_then_restart_fires_each_once(
    home: Path, receiver: WebhookReceiver
) -> None:
    dwell = 10.0  # long enough to post 100 events on a busy machine before any is due
    (home / "triggers.yaml").write_text(TRIGGERS.format(url=receiver.url, dwell=dwell))
    first = Server(home).start()
    customers = [f"vip-{i}" for i in range(100)]
    for cid in customers:
        first.event(cid, "page_view", page="pricing")
    scheduled_at = time.time()
    assert first.metric("maestro_trigger_timers_scheduled_total") == 100
    assert first.metric("maestro_trigger_timers_fired_total") == 0
    first.stop(signal.SIGKILL)  # mid-dwell: nothing fired, 100 pending
    assert receiver.received == []
    second = Server(home).start()
    try:
        deadline = scheduled_at + dwell + 30
        while second.metric("maestro_trigger_timers_fired_total") < 100:
            assert time.time() < deadline, "not every timer fired after the restart"
            time.sleep(0.1)
        receiver.wait_for(100, timeout=30)
        time.sleep(1.0)  # nothing fires or arrives twice
        assert second.metric("maestro_trigger_timers_fired_total") == 100
    finally:
        second.stop()
    rows = trigger_rows(home)
    assert sorted(rows["customer_id"]) == sorted(customers)
    assert set(Counter(rows["request_id"]).values()) == {1}
    sent = bodies(receiver)
    assert sorted(d["customer_id"] for d in sent) == sorted(customers)
    keys = receiver.delivered_keys()
    assert len(keys) == 100 and set(Counter(keys).values()) == {1}
    assert set(keys) == set(rows["event_id"])
