"""The hot endpoints served straight from ASGI, and the one error shape every endpoint uses.

``POST /decide`` is the product's hot path. Through FastAPI a request also pays the
router's walk over every route, a ``Request`` object, stdlib ``json.loads`` of the body,
pydantic validation of the resulting dicts and the dependency machinery, together a
sizeable share of a decision's cost (BENCHMARKS.md, "Serving: notes").
:class:`DirectRoutes` sits innermost in the middleware stack (after the API-key guard,
the body-size limit and admission control, so nothing is skipped) and answers the
routes it is given itself: the raw body goes to pydantic's Rust JSON parser
(``model_validate_json``) and the service's bytes go back as they are. Every other
path and method falls through to FastAPI, which still documents ``/decide`` in
``/openapi.json`` (the FastAPI route stays registered) and serves the benchmark's
FastAPI variants.

Errors take exactly the shape of FastAPI's handlers (:func:`validation_response`,
:func:`error_response`): ``{"detail": [{"field", "problem", "type"}]}``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from features.errors import FeatureStoreError
from policies.errors import PolicyError
from serving.errors import ServingError

logger = logging.getLogger(__name__)

#: the roots of every domain error, each carrying its status, field and headers
DOMAIN_ERRORS: tuple[type[Exception], ...] = (PolicyError, FeatureStoreError, ServingError)
_JSON = (b"content-type", b"application/json")


def error_response(
    status: int, field: str | None, problem: str, kind: str, headers: dict[str, str] | None = None
) -> Response:
    body = orjson.dumps({"detail": [{"field": field, "problem": problem, "type": kind}]})
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def domain_response(exc: Exception) -> Response:
    """A domain error (one of :data:`DOMAIN_ERRORS`) as its HTTP answer."""
    status = int(getattr(exc, "status_code", 500))
    if status >= 500:
        logger.warning("request failed: %s: %s", type(exc).__name__, exc)
    return error_response(
        status,
        getattr(exc, "field", None),
        str(exc),
        type(exc).__name__,
        getattr(exc, "headers", None),
    )


def field_name(loc: Iterable[Any], kind: str = "") -> str:
    """``("body", "actions", 0, "id")`` → ``"actions.0.id"``; an undecodable body → ``body``."""
    if kind == "json_invalid":
        return "body"
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


def validation_response(errors: Iterable[dict[str, Any]]) -> Response:
    """pydantic's (or FastAPI's) validation errors as the contract's 422."""
    items = [
        {
            "field": field_name(tuple(e.get("loc", ())), e.get("type", "")),
            "problem": e.get("msg", "invalid"),
            "type": e.get("type", "value_error"),
        }
        for e in errors
    ]
    return Response(orjson.dumps({"detail": items}), status_code=422, media_type="application/json")


#: a direct handler: the raw request body in, the JSON answer's bytes out (status 200);
#: it raises pydantic's ``ValidationError`` for bad input and domain errors as usual
Handler = Callable[[bytes], bytes]


class DirectRoutes:
    """Pure-ASGI middleware answering ``(method, path)`` pairs from :data:`Handler` s."""

    def __init__(self, app: ASGIApp, routes: dict[tuple[str, str], Handler]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = (
            self.routes.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        )
        if handler is None:
            await self.app(scope, receive, send)
            return
        message = await receive()
        body = message.get("body", b"")
        if message.get("more_body", False):
            chunks = [body]
            while message.get("more_body", False):
                message = await receive()
                if message["type"] != "http.request":  # the client went away
                    return
                chunks.append(message.get("body", b""))
            body = b"".join(chunks)
        try:
            answer = handler(body)
        except ValidationError as exc:
            await validation_response(exc.errors(include_url=False))(scope, receive, send)
            return
        except DOMAIN_ERRORS as exc:
            await domain_response(exc)(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [_JSON, (b"content-length", str(len(answer)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": answer})
