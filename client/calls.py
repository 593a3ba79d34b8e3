"""What the sync and async clients share: each API call as a :class:`Call` (method,
path, body, the statuses that are success, whether a dropped connection may be
retried), the retry schedule and the mapping of an answer to a result or a typed error.

The two clients differ only in how they send and sleep, so the rules live here once:
a ``503`` (refused before any work) is retried after its ``Retry-After`` (capped at
``max_wait``), at most ``attempts`` times in all; a connection error is retried the
same way when the call is safe to repeat (``/decide`` carries its ``request_id``, a
reward is idempotent by event id, an erasure is idempotent; an event only when the
connection was never made).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

#: the retry defaults: attempts in all (first try included), and the cap on one wait (s)
ATTEMPTS = 5
MAX_WAIT = 30.0


@dataclass(frozen=True)
class Call:
    """One logical API call, possibly sent several times."""

    method: str
    path: str
    body: dict[str, Any] | None
    ok: tuple[int, ...]
    #: whether a request that may have reached the server can be sent again
    repeatable: bool = True
    headers: dict[str, str] = field(default_factory=dict)


def decide_call(customer_id: str, decision_point: str, context: dict[str, Any] | None,
                actions: list[dict[str, Any]] | None, request_id: str | None) -> Call:
    """``POST /decide`` with a ``request_id`` (a fresh one unless given): every retry of
    this call sends the same id, so the service returns the same decision, logged once."""
    body: dict[str, Any] = {"customer_id": customer_id, "decision_point": decision_point,
                            "request_id": request_id or uuid.uuid4().hex}
    if context:
        body["context"] = context
    if actions is not None:
        body["actions"] = actions
    return Call("POST", "/decide", body, (200,))


def reward_call(event_id: str, reward: float) -> Call:
    return Call("POST", "/reward", {"event_id": event_id, "reward": float(reward)}, (200,))


def event_call(customer_id: str, type_: str, properties: dict[str, Any] | None,
               timestamp: str | None) -> Call:
    body: dict[str, Any] = {"customer_id": customer_id, "type": type_,
                            "properties": dict(properties or {})}
    if timestamp is not None:
        body["timestamp"] = timestamp
    return Call("POST", "/events", body, (200, 202), repeatable=False)


def erase_call(customer_id: str) -> Call:
    return Call("DELETE", f"/customers/{quote(customer_id, safe='')}", None, (200,))


def auth_headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def retry_after(headers: Any, max_wait: float) -> float:
    """Seconds to wait before retrying a ``503``: its ``Retry-After`` (1 s when absent or
    not a number of seconds), never below 0 nor above ``max_wait``."""
    try:
        wait = float(headers.get("retry-after", "1"))
    except (TypeError, ValueError):
        wait = 1.0
    return min(max(wait, 0.0), max_wait)


def backoff(attempt: int, max_wait: float) -> float:
    """Wait after the ``attempt``-th dropped connection (0.2 s, doubling)."""
    return min(0.2 * 2 ** attempt, max_wait)


def check(base_url: str, call: Call, status: int, body_text: str, json_body: Any) -> Any:
    """The decoded body of a successful answer, else the typed error raised."""
    from client.errors import from_answer

    if status in call.ok:
        return json_body
    raise from_answer(f"{base_url}{call.path}", status, json_body, body_text)


def decode(resp: Any) -> Any:
    """An ``httpx.Response``'s JSON, or ``None`` when it has none."""
    try:
        return resp.json()
    except ValueError:
        return None
