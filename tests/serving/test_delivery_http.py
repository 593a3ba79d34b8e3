"""Delivery inside the real service on a real uvicorn server: the lifespan runs the worker,
a request enqueued through ``service.delivery`` reaches a real webhook receiver signed;
``POST /events`` cancels what a purchase cancels; consent revoked and a cap reached since
the trigger cancel at delivery time; all of it in ``/metrics``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_servers import ALL_CONSENT, LiveServer, LiveServers, live_settings
from webhook_receiver import WebhookReceiver

from serving.delivery.ports import DeliveryRequest

SECRET = "e2e-webhook-secret"


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver().start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, live_servers: LiveServers,
        receiver: WebhookReceiver) -> Iterator[LiveServer]:
    from features.source import InMemoryFeatureSource
    from serving.service.feature_layer import InMemoryFeatureLayer

    home: Path = tmp_path_factory.mktemp("delivery-home")
    (home / "triggers.yaml").write_text(
        f"destinations:\n  crm_hook: {{webhook: \"{receiver.url}\", secret_env: E2E_HOOK}}\n")
    mp = pytest.MonkeyPatch()
    mp.setenv("E2E_HOOK", SECRET)
    customers = {f"c{i}": {**ALL_CONSENT} for i in range(5)}
    layer = InMemoryFeatureLayer(InMemoryFeatureSource(customers))
    server = live_servers.start(
        live_settings(home, delivery_backoff_seconds=0.05, delivery_backoff_max_seconds=0.2,
                      delivery_poll_seconds=0.05), layer)
    yield server
    server.stop()
    mp.undo()


def request(srv: LiveServer, n: int, customer: str, channel: str = "email",
            action: str = "email_newsletter") -> DeliveryRequest:
    event_id = srv.service.signer.issue(time.time() + 3600)
    return DeliveryRequest(
        delivery_id=event_id, trigger="t", destination="crm_hook", customer_id=customer,
        decision_point="default", decision={"event_id": event_id, "action_id": action,
                                            "channel": channel},
        triggered_at=time.time(), channel=channel, cancel_on=("purchase",))


def metric(srv: LiveServer, line: str) -> float:
    for row in srv.client.get("/metrics").text.splitlines():
        if row.startswith(line + " "):
            return float(row.split()[-1])
    return 0.0


def wait(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_enqueued_in_the_service_delivered_signed(srv: LiveServer,
                                                  receiver: WebhookReceiver) -> None:
    assert srv.service.delivery is not None
    r = request(srv, 1, "c0")
    srv.service.delivery.enqueue(r)
    [got] = [x for x in receiver.wait_for(1) if x.idempotency_key == r.delivery_id]
    assert got.verifies(SECRET.encode())
    wait(lambda: metric(srv, 'maestro_delivery_delivered_total{destination="crm_hook"}') >= 1)
    assert metric(srv, 'maestro_delivery_enqueued_total{destination="crm_hook"}') >= 1


def test_a_purchase_posted_to_events_cancels_the_pending_delivery(
    srv: LiveServer, receiver: WebhookReceiver
) -> None:
    receiver.status = 503  # failing: the request waits for its retry, pending
    try:
        r = request(srv, 2, "c1")
        srv.service.delivery.enqueue(r)
        wait(lambda: srv.service.delivery.outbox.counts()["pending"] == 1
             and metric(srv, 'maestro_delivery_retried_total{destination="crm_hook"}') >= 1)
        answer = srv.client.post("/events", json={"customer_id": "c1", "type": "purchase",
                                                  "properties": {"value": 30.0}})
        assert answer.status_code == 202
        wait(lambda: srv.service.delivery.outbox.counts()["cancelled"] >= 1)
    finally:
        receiver.status = 200
    time.sleep(0.5)
    assert r.delivery_id not in receiver.delivered_keys()
    assert metric(srv, 'maestro_delivery_cancelled_total{reason="event:purchase"}') == 1


def test_consent_revoked_or_a_cap_reached_since_the_trigger_cancels(
    srv: LiveServer, receiver: WebhookReceiver
) -> None:
    answer = srv.client.post("/events", json={
        "customer_id": "c2", "type": "consent_changed",
        "properties": {"channel": "email", "granted": False}})
    assert answer.status_code == 202
    no_consent = request(srv, 3, "c2")
    for _ in range(2):  # the sms cap of the shipped catalog: 2 in 7 days
        assert srv.client.post("/events", json={
            "customer_id": "c3", "type": "message_sent",
            "properties": {"channel": "sms", "action_id": "sms_offer"}}).status_code == 202
    capped = request(srv, 4, "c3", "sms", "sms_offer")
    fine = request(srv, 5, "c4", "sms", "sms_offer")
    for r in (no_consent, capped, fine):
        srv.service.delivery.enqueue(r)
    wait(lambda: fine.delivery_id in receiver.delivered_keys())
    wait(lambda: metric(srv, 'maestro_delivery_cancelled_total{reason="contact_policy"}') == 1)
    assert metric(srv, 'maestro_delivery_cancelled_total{reason="consent"}') == 1
    assert no_consent.delivery_id not in receiver.delivered_keys()
    assert capped.delivery_id not in receiver.delivered_keys()
