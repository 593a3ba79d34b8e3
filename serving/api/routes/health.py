"""Operations: ``GET /healthz`` (alive), ``GET /readyz`` (ready to decide), ``GET /metrics``."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from serving.service.decision_service import DecisionService
from serving.service.metrics import CONTENT_TYPE


def register(app: FastAPI, service: DecisionService) -> None:
    """Liveness, readiness (``503`` until the policy is loaded and features reachable)
    and the Prometheus text."""

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> Response:
        checks = service.ready()
        status = 200 if all(checks.values()) else 503
        return JSONResponse({"ready": status == 200, **checks}, status_code=status)

    @app.get("/metrics", response_class=PlainTextResponse, tags=["ops"])
    async def metrics() -> Response:
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)
