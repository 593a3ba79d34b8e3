"""The Python client against a real uvicorn server on 127.0.0.1: a tiny ASGI app that
refuses the first two calls with ``503`` + ``Retry-After: 1`` and answers ``422`` in the
API's error shape for a bad body."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from client import AsyncMaestroClient, MaestroClient, RequestRejected

DECISION = {"event_id": "e-1", "action_id": "push_discount", "channel": "push",
            "probability": 0.9, "ranking": [{"action_id": "push_discount", "probability": 1.0}],
            "excluded": [], "policy": "rules", "policy_version": "1", "degraded": False,
            "customer_known": True}


class Refuser:
    """ASGI app: the first ``refuse`` calls get 503; ``customer_id == "bad"`` gets 422."""

    def __init__(self, refuse: int = 2) -> None:
        self.refuse, self.calls, self.request_ids = refuse, 0, []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        data = json.loads(body or b"{}")
        self.calls += 1
        self.request_ids.append(data.get("request_id"))
        if self.calls <= self.refuse:
            status, headers, out = 503, [(b"retry-after", b"1")], {"detail": []}
        elif data.get("customer_id") == "bad":
            status, headers = 422, []
            out = {"detail": [{"field": "context.cart_value", "problem": "not finite",
                               "type": "finite_number"}]}
        else:
            status, headers, out = 200, [], DECISION
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), *headers]})
        await send({"type": "http.response.body", "body": json.dumps(out).encode()})


def _serve(app: Refuser) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def refuser() -> Iterator[tuple[Refuser, str]]:
    app = Refuser()
    for url in _serve(app):
        yield app, url


def test_sync_client_waits_retry_after_and_keeps_the_request_id(refuser) -> None:
    app, url = refuser
    start = time.monotonic()
    with MaestroClient(url, "k") as maestro:
        d = maestro.decide("c-1", "cart_abandoned", context={"device": "mobile"})
    assert time.monotonic() - start >= 2.0  # two refusals, Retry-After: 1 each
    assert d.action_id == "push_discount" and d.customer_known is True
    assert app.calls == 3 and maestro.refused == 2
    assert len(set(app.request_ids)) == 1 and app.request_ids[0]  # one id for all three


def test_sync_client_raises_a_typed_error_naming_the_field(refuser) -> None:
    app, url = refuser
    app.refuse = 0
    with MaestroClient(url) as maestro, pytest.raises(RequestRejected) as err:
        maestro.decide("bad")
    assert err.value.status == 422 and err.value.field == "context.cart_value"
    assert "context.cart_value" in str(err.value)


def test_async_client_retries_and_raises_typed_errors(refuser) -> None:
    app, url = refuser

    async def go() -> None:
        async with AsyncMaestroClient(url) as maestro:
            start = time.monotonic()
            d = await maestro.decide("c-1")
            assert time.monotonic() - start >= 2.0 and d.event_id == "e-1"
            with pytest.raises(RequestRejected) as err:
                await maestro.decide("bad")
            assert err.value.field == "context.cart_value"

    asyncio.run(go())
    assert app.calls == 4 and len(set(app.request_ids[:3])) == 1
