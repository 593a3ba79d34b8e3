"""The hot endpoints served straight from ASGI, without FastAPI's router.

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

Errors are answered by the same functions as FastAPI's handlers
(:mod:`serving.api.errors`): ``{"detail": [{"field", "problem", "type"}]}``.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from core.errors import MaestroError
from serving.api.errors import domain_response, validation_response

_JSON = (b"content-type", b"application/json")


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
        except MaestroError as exc:
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
