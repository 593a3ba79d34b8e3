"""Admission control (:mod:`serving.api.admission`): refusals are ``503`` + ``Retry-After`` +
the contract's JSON error, by queue time on the event loop and by requests in flight;
health paths are never shed; an idle loop stops the stamping callback."""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson
from starlette.types import Receive, Scope, Send

from serving.api.admission import AdmissionMiddleware


def _app(hold: asyncio.Event | None = None, busy_s: float = 0.0):
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if hold is not None:
            await hold.wait()
        if busy_s:
            time.sleep(busy_s)  # a handler that never yields, like /decide
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def _client(app: AdmissionMiddleware) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def test_requests_queued_behind_a_busy_loop_are_refused_with_retry_after() -> None:
    mw = AdmissionMiddleware(_app(busy_s=0.03), max_in_flight=0, queue_budget_ms=10)

    async def run() -> list[httpx.Response]:
        async with _client(mw) as c:
            return await asyncio.gather(*(c.post("/decide") for _ in range(6)))

    answers = asyncio.run(run())
    codes = [r.status_code for r in answers]
    assert codes.count(200) >= 1 and codes.count(503) >= 1, codes
    for r in answers:
        if r.status_code == 503:
            assert r.headers["retry-after"] == "1"
            detail = orjson.loads(r.content)["detail"][0]
            assert detail["type"] == "OverloadedError" and "waited" in detail["problem"]
    assert mw.gate.rejected["queue_time"] == codes.count(503)


def test_requests_over_the_in_flight_bound_are_refused_and_health_is_exempt() -> None:
    hold = asyncio.Event()
    mw = AdmissionMiddleware(_app(hold=hold), max_in_flight=2, queue_budget_ms=0)

    async def run() -> tuple[list[int], int, int]:
        async with _client(mw) as c:
            held = [asyncio.create_task(c.post("/decide")) for _ in range(2)]
            while mw.gate.in_flight < 2:
                await asyncio.sleep(0.001)
            third = await c.post("/decide")
            health = asyncio.create_task(c.get("/healthz"))  # exempt: waits, not refused
            await asyncio.sleep(0.01)
            hold.set()
            done = [r.status_code for r in await asyncio.gather(*held)]
            return done, third.status_code, (await health).status_code

    done, third, health = asyncio.run(run())
    assert done == [200, 200] and third == 503 and health == 200
    assert mw.gate.rejected == {"in_flight": 1, "queue_time": 0} and mw.gate.in_flight == 0


def test_idle_loop_stops_stamping() -> None:
    mw = AdmissionMiddleware(_app(), max_in_flight=0, queue_budget_ms=50)

    async def run() -> bool:
        async with _client(mw) as c:
            assert (await c.post("/decide")).status_code == 200
            for _ in range(5):
                await asyncio.sleep(0)
            return next(iter(mw.gate._clocks.values())).armed

    assert asyncio.run(run()) is False
