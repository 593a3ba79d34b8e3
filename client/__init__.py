"""A Python client of Maestro's HTTP API for journey engines: :class:`MaestroClient`
(blocking) and :class:`AsyncMaestroClient` (asyncio), both on ``httpx``.

Usage::

    from client import MaestroClient, RequestRejected

    with MaestroClient("http://127.0.0.1:8000", api_key="s3cret") as maestro:
        maestro.event("c-000042", "page_view", {"page": "checkout"})
        d = maestro.decide("c-000042", "cart_abandoned", context={"device": "mobile"})
        print(d.action_id, d.probability, d.customer_known)   # push_discount 0.92 True
        maestro.reward(d.event_id, 1.0)                        # RewardAck(duplicate=False)
        try:
            maestro.decide("c-000042", context={"cart_value": float("inf")})
        except RequestRejected as err:
            print(err.status, err.field)                       # 422 context.cart_value

Each call gets one ``request_id``, reused by its retries, so a retried ``/decide``
returns the same decision, logged once. A ``503`` is retried after its ``Retry-After``;
a dropped connection after a short backoff (bounded attempts); a 4xx raises a typed
:class:`ClientError` subclass whose ``field`` names the bad field.
"""

from client.aio import AsyncMaestroClient
from client.errors import (
    ClientError,
    Conflict,
    ConnectionFailed,
    NotFound,
    Overloaded,
    RequestRejected,
    Unauthorized,
)
from client.sync import MaestroClient
from client.types import Decision, Erased, Excluded, Ranked, RewardAck

__all__ = [
    "AsyncMaestroClient", "ClientError", "Conflict", "ConnectionFailed", "Decision", "Erased",
    "Excluded", "MaestroClient", "NotFound", "Overloaded", "Ranked", "RequestRejected",
    "RewardAck", "Unauthorized",
]
