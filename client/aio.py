"""The asyncio client: :class:`AsyncMaestroClient` (``httpx.AsyncClient``, one keep-alive pool)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from client import calls
from client.calls import Call
from client.errors import ConnectionFailed, Overloaded
from client.types import Decision, Erased, RewardAck


class AsyncMaestroClient:
    """Client of one running Maestro. ``attempts``: tries per call in all (a ``503`` is
    retried after its ``Retry-After``, capped at ``max_wait`` s; a dropped connection
    after a short backoff); ``refused`` counts the ``503`` answers retried."""

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 10.0,
                 attempts: int = calls.ATTEMPTS, max_wait: float = calls.MAX_WAIT,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.attempts, self.max_wait, self.refused = max(1, attempts), max_wait, 0
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=calls.auth_headers(api_key),
                                  timeout=timeout, transport=transport)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncMaestroClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _send(self, call: Call) -> Any:
        for attempt in range(self.attempts):
            last = attempt == self.attempts - 1
            try:
                resp = await self._http.request(call.method, call.path, json=call.body)
            except httpx.TransportError as exc:
                if last or not (call.repeatable or isinstance(exc, httpx.ConnectError)):
                    raise ConnectionFailed(f"{self.base_url}{call.path}: {exc}") from exc
                await asyncio.sleep(calls.backoff(attempt, self.max_wait))
                continue
            if resp.status_code != 503:
                return calls.check(self.base_url, call, resp.status_code, resp.text,
                                   calls.decode(resp))
            if last:
                break
            self.refused += 1
            await asyncio.sleep(calls.retry_after(resp.headers, self.max_wait))
        raise Overloaded(f"{self.base_url}{call.path}: HTTP 503 after {self.attempts} attempts",
                         status=503)

    async def healthy(self) -> bool:
        """Whether ``/healthz`` answers ``200``."""
        try:
            return (await self._http.get("/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

    async def decide(self, customer_id: str, decision_point: str = "default",
               context: dict[str, Any] | None = None,
               actions: list[dict[str, Any]] | None = None,
               request_id: str | None = None) -> Decision:
        """``POST /decide``; retries reuse one ``request_id`` (the same decision)."""
        call = calls.decide_call(customer_id, decision_point, context, actions, request_id)
        return Decision.from_json(await self._send(call))

    async def reward(self, event_id: str, reward: float) -> RewardAck:
        """``POST /reward`` (idempotent by event id: a repeat answers ``duplicate``)."""
        return RewardAck.from_json(await self._send(calls.reward_call(event_id, reward)))

    async def event(self, customer_id: str, type: str, properties: dict[str, Any] | None = None,
              timestamp: str | None = None) -> None:
        """``POST /events``."""
        await self._send(calls.event_call(customer_id, type, properties, timestamp))

    async def erase(self, customer_id: str) -> Erased:
        """``DELETE /customers/{customer_id}``: erase the customer everywhere."""
        return Erased(customer_id, dict(await self._send(calls.erase_call(customer_id)) or {}))
