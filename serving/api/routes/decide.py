"""``POST /decide``: the next best action for one customer at one decision point.

The route documents ``/decide`` in ``/openapi.json``; on the served path the request is
answered before FastAPI by :class:`serving.api.direct.DirectRoutes` with
:func:`direct_routes` (unless the app serves it from the threadpool).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import Response

from serving.api.direct import Handler
from serving.api.fast_decode import decode_decide
from serving.api.schemas import DecideRequest, DecideResponse
from serving.service.decision_service import DecisionService


def register(app: FastAPI, service: DecisionService, *, in_threadpool: bool = False) -> None:
    """``POST /decide`` as an ``async`` handler on the event loop, or with
    ``in_threadpool`` a sync one (Starlette's threadpool)."""
    if in_threadpool:

        @app.post("/decide", response_model=DecideResponse, tags=["decisions"])
        def decide_sync(body: DecideRequest) -> Response:
            """Choose the next best action for one customer at one decision point."""
            return Response(service.decide(body), media_type="application/json")

    else:

        @app.post("/decide", response_model=DecideResponse, tags=["decisions"])
        async def decide(body: DecideRequest) -> Response:
            """Choose the next best action for one customer at one decision point."""
            return Response(service.decide(body), media_type="application/json")


def direct_routes(service: DecisionService) -> dict[tuple[str, str], Handler]:
    """What :class:`serving.api.direct.DirectRoutes` answers without FastAPI: ``/decide`` and
    the benchmark's baseline ``/_empty`` (the same path through the same middleware, so
    "``/decide`` over empty" is the decision's own cost). ``/decide`` bodies are decoded by
    :func:`serving.api.fast_decode.decode_decide` (msgspec, falling back to the schema)."""

    def decide(body: bytes) -> bytes:
        return service.decide(decode_decide(body))

    return {("POST", "/decide"): decide, ("POST", "/_empty"): lambda _body: b"{}"}
