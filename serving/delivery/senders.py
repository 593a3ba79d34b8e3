"""Putting one request on the wire: an HMAC-signed webhook POST or a Redis Stream ``XADD``.

The body is the same for both: ``trigger``, ``customer_id``, ``decision`` (the ``/decide``
answer as made) and ``delivered_at`` (ISO 8601, UTC). A webhook gets it as the exact JSON
bytes that ``X-Maestro-Signature: sha256=<hex HMAC-SHA256 of the body>`` signs, with
``Idempotency-Key: <delivery_id>``; a stream gets the same fields (``decision`` as JSON
text) plus ``delivery_id``.

A send answers an :class:`Outcome`: ``ok``; ``retry`` (a network error, a timeout, a 5xx,
408 or 429); or ``fatal`` (any other 4xx: the receiver refuses this request and will
refuse it again, so it is dead-lettered at once).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from serving.delivery.config import Destination, StreamDestination, WebhookDestination
from serving.delivery.ports import DeliveryRequest

OK, RETRY, FATAL = "ok", "retry", "fatal"
#: 4xx answers that mean "later", not "never"
RETRYABLE_4XX = frozenset({408, 429})


class Outcome(NamedTuple):
    """What one attempt did: ``kind`` (:data:`OK`, :data:`RETRY`, :data:`FATAL`) and, when
    it failed, a short ``error`` (``http_503``, ``timeout``, ``connect``) for logs and
    metrics."""

    kind: str
    error: str = ""


def body(request: DeliveryRequest, delivered_at: float) -> dict[str, Any]:
    """The fields every destination receives."""
    return {
        "trigger": request.trigger,
        "customer_id": request.customer_id,
        "decision": dict(request.decision),
        "delivered_at": datetime.fromtimestamp(delivered_at, UTC).isoformat(),
    }


def signature(secret: bytes, payload: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of payload>``: the ``X-Maestro-Signature`` header."""
    return "sha256=" + hmac.new(secret, payload, hashlib.sha256).hexdigest()


def classify(status: int) -> Outcome:
    """The outcome of an HTTP answer ``status``."""
    if 200 <= status < 300:
        return Outcome(OK)
    if 400 <= status < 500 and status not in RETRYABLE_4XX:
        return Outcome(FATAL, f"http_{status}")
    return Outcome(RETRY, f"http_{status}")


class Senders:
    """One HTTP session and one Redis client per URL, shared by every delivery of a worker.

    Webhooks go through aiohttp's client (locked already, as Ray Serve's dependency) rather
    than httpx: an httpx POST costs several times the CPU, too much for the delivery rate
    the benchmark asks for (BENCHMARKS.md, "Delivery").
    """

    def __init__(self, timeout_seconds: float = 5.0, connections: int = 16) -> None:
        self._timeout = timeout_seconds
        self._connections = connections
        self._session: Any = None
        self._errors: tuple[type[BaseException], ...] = (OSError,)
        self._redis: dict[str, Any] = {}

    def open(self) -> None:
        """Make the HTTP session on the running loop (aiohttp binds it to the loop). Called
        when the worker starts, so the import (it builds an SSL context) never stalls a
        delivery; the serving modules stay light to import."""
        if self._session is not None:
            return
        import aiohttp

        self._errors = (aiohttp.ClientError, OSError)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._connections),
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            skip_auto_headers=("User-Agent",),
            headers={"User-Agent": "maestro-delivery"},
        )

    async def send(
        self, destination: Destination, request: DeliveryRequest, delivered_at: float
    ) -> Outcome:
        """Deliver ``request`` to ``destination`` once."""
        fields = body(request, delivered_at)
        if isinstance(destination, WebhookDestination):
            return await self._post(destination, request, orjson.dumps(fields))
        return await self._xadd(destination, request, fields)

    async def _post(
        self, dest: WebhookDestination, request: DeliveryRequest, payload: bytes
    ) -> Outcome:
        headers = {
            "Content-Type": "application/json",
            "X-Maestro-Signature": signature(dest.secret, payload),
            "Idempotency-Key": request.delivery_id,
        }
        self.open()
        try:
            async with self._session.post(dest.url, data=payload, headers=headers) as answer:
                await answer.read()
                return classify(answer.status)
        except TimeoutError:
            return Outcome(RETRY, "timeout")
        except self._errors:
            return Outcome(RETRY, "connect")

    async def _xadd(
        self, dest: StreamDestination, request: DeliveryRequest, fields: dict[str, Any]
    ) -> Outcome:
        import redis.asyncio as aioredis
        from redis.exceptions import RedisError

        client = self._redis.get(dest.redis_url)
        if client is None:
            client = self._redis[dest.redis_url] = aioredis.Redis.from_url(
                dest.redis_url, socket_timeout=self._timeout, socket_connect_timeout=self._timeout
            )
        entry = {**fields, "decision": orjson.dumps(fields["decision"]),
                 "delivery_id": request.delivery_id}
        try:
            await client.xadd(dest.key, entry)
        except (RedisError, OSError):
            return Outcome(RETRY, "redis")
        return Outcome(OK)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        for client in self._redis.values():
            await client.aclose()
        self._redis.clear()
