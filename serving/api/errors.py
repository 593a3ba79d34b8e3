"""The one error shape of the HTTP API, and the one place errors are mapped to it.

Every error answer is ``{"detail": [{"field", "problem", "type"}]}``. A
:class:`core.errors.MaestroError` is answered from its own ``http_status``, ``field``
and ``headers`` (:func:`domain_response`); pydantic's validation errors and FastAPI's
own 4xx take the same shape. :func:`install_error_handlers` registers the mapping on the
app; the ASGI fast path (:mod:`serving.api.direct`) and the guard call the same
functions, so no route and no middleware builds an error body of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from core.errors import MaestroError

logger = logging.getLogger(__name__)


def error_response(
    status: int,
    field: str | None,
    problem: str,
    kind: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """One error item as a JSON answer with ``status``."""
    body = orjson.dumps({"detail": [{"field": field, "problem": problem, "type": kind}]})
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def domain_response(exc: MaestroError) -> Response:
    """A Maestro error as its HTTP answer (status, body and headers from its class)."""
    if exc.http_status >= 500:
        logger.warning("request failed: %s: %s", type(exc).__name__, exc)
    return Response(
        orjson.dumps({"detail": [exc.detail()]}),
        status_code=exc.http_status,
        media_type="application/json",
        headers=dict(exc.headers) if exc.headers else None,
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


def install_error_handlers(app: FastAPI) -> None:
    """Register the app's exception handlers: one for :class:`MaestroError`, one for
    request validation and one for FastAPI's own 4xx (an undecodable body: 400; an
    unknown path: 404; a wrong method: 405), all in the contract's shape."""

    @app.exception_handler(MaestroError)
    async def _maestro(_request: Request, exc: MaestroError) -> Response:
        return domain_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> Response:
        return validation_response(exc.errors())

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> Response:
        field = "body" if exc.status_code == 400 else None
        return error_response(exc.status_code, field, str(exc.detail), "HTTPError", exc.headers)
