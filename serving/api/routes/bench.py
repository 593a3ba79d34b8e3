"""Routes kept only for the benchmarks (hidden from ``/openapi.json``): ``/decide`` as a
FastAPI async and a threadpool handler, and ``/_empty``, the same server doing no work."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import Response

from serving.api.schemas import DecideRequest
from serving.service.decision_service import DecisionService


def register(app: FastAPI, service: DecisionService) -> None:
    """The benchmark's comparison routes around ``service``."""

    @app.post("/_decide_async", include_in_schema=False)
    async def decide_async(body: DecideRequest) -> Response:
        """/decide as an async handler (on the event loop), for the benchmark's comparison."""
        return Response(service.decide(body), media_type="application/json")

    @app.post("/_decide_threadpool", include_in_schema=False)
    def decide_threadpool(body: DecideRequest) -> Response:
        """/decide as a sync handler (Starlette runs it in its threadpool): kept only so
        the benchmark can measure the hop the async handler avoids."""
        return Response(service.decide(body), media_type="application/json")

    @app.post("/_empty", include_in_schema=False)
    async def empty() -> Response:
        """The baseline of the benchmarks: same server, same middleware, no work."""
        return Response(b"{}", media_type="application/json")
