"""``GET /experiments``: per decision point, each variant's results and lift."""

from __future__ import annotations

import orjson
from fastapi import FastAPI
from fastapi.responses import Response

from serving.dashboard.live import ExperimentsView


def register(app: FastAPI, view: ExperimentsView) -> None:
    """``GET /experiments`` from ``view`` (shared with the dashboard's data route)."""

    @app.get("/experiments", tags=["experiments"])
    def experiments() -> Response:
        """Per decision point: each variant's decisions, rewards, mean reward and lift
        over the holdout and ``rules`` with 95% intervals (read from the Parquet logs)."""
        return Response(
            orjson.dumps(view.report(), option=orjson.OPT_SERIALIZE_NUMPY),
            media_type="application/json",
        )
