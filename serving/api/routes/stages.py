"""``GET /stages``: each decision point's rollout stage (shadow, canary, watched champion),
its guardrails and the shadow's live off-policy estimates."""

from __future__ import annotations

import orjson
from fastapi import FastAPI
from fastapi.responses import Response

from serving.service.decision_service import DecisionService


def register(app: FastAPI, service: DecisionService) -> None:
    """``GET /stages`` from the service's rollout (every decision point at ``champion``
    when the service runs without a registry)."""

    @app.get("/stages", tags=["experiments"])
    def stage_view() -> Response:
        """Per decision point: the versions at each stage (MLflow aliases ``champion``,
        ``shadow``, ``canary``, ``previous_champion``), the step in flight, its
        guardrails' mSPRT statistics, the shadow's running IPS/SNIPS, and the last
        automatic rollback."""
        rollout = service.rollout
        body = {} if rollout is None else rollout.describe()
        return Response(
            orjson.dumps({"decision_points": body}, option=orjson.OPT_SERIALIZE_NUMPY),
            media_type="application/json",
        )
