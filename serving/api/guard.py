"""API keys and the body size limit: one pure-ASGI middleware in front of every route.

Cheaper than Starlette's ``BaseHTTPMiddleware``; its refusals are the serving errors
:class:`~serving.errors.UnauthorizedError` and :class:`~serving.errors.PayloadTooLargeError`,
answered like every other error (:func:`serving.api.errors.domain_response`).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.api.errors import domain_response
from serving.errors import PayloadTooLargeError, UnauthorizedError

#: paths served without an API key
OPEN_PATHS = frozenset({"/healthz", "/metrics"})
_UNAUTHORIZED = UnauthorizedError("missing or invalid API key (Authorization: Bearer <key>)")


class GuardMiddleware:
    """API keys (``Authorization: Bearer <key>``, any listed key) and the body size limit."""

    def __init__(self, app: ASGIApp, api_keys: Iterable[str], max_body_bytes: int) -> None:
        self.app = app
        self.keys = [k.encode() for k in api_keys]
        self.max_body = max_body_bytes

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() != b"bearer":
                    return False
                token = token.strip()
                return any(hmac.compare_digest(token, k) for k in self.keys)
        return False

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = PayloadTooLargeError(f"request body over {self.max_body} bytes")
        await domain_response(refusal)(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.keys and scope["path"] not in OPEN_PATHS and not self._authorized(scope):
            await domain_response(_UNAUTHORIZED)(scope, receive, send)
            return
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await self._too_large(scope, receive, send)
            return
        if length is None and scope["method"] in ("POST", "PUT", "PATCH"):
            # chunked upload: read it here, within the limit, then replay it to the app
            chunks: list[bytes] = []
            size = 0
            more = True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    break
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                more = message.get("more_body", False)
                if size > self.max_body:
                    await self._too_large(scope, receive, send)
                    return
            body = b"".join(chunks)
            sent = False

            async def replay() -> Message:
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
            return
        await self.app(scope, receive, send)
