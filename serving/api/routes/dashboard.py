"""``GET /dashboard``: the live dashboard page, and ``GET /dashboard/data``, what it draws."""

from __future__ import annotations

import orjson
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response

from serving.dashboard.live import ExperimentsView, dashboard_data
from serving.dashboard.live import page as dashboard_page
from serving.service.decision_service import DecisionService


def register(app: FastAPI, service: DecisionService, view: ExperimentsView) -> None:
    """The page (static) and its data: live series from ``service``, the reward rate
    per variant from ``view``."""

    @app.get("/dashboard", response_class=HTMLResponse, tags=["experiments"])
    async def dashboard() -> Response:
        """The live dashboard page (static; it polls ``/dashboard/data``)."""
        return HTMLResponse(dashboard_page())

    @app.get("/dashboard/data", tags=["experiments"])
    def dashboard_json() -> Response:
        """What the dashboard draws: live series and the reward rate per variant."""
        data = dashboard_data(service, view.report())
        return Response(
            orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json"
        )
