"""``POST /reward``: the reward of a decision, idempotent by event id."""

from __future__ import annotations

import orjson
from fastapi import FastAPI
from fastapi.responses import Response

from serving.api.schemas import RewardRequest, RewardResponse
from serving.service.decision_service import DecisionService


def register(app: FastAPI, service: DecisionService) -> None:
    """``POST /reward`` (``404`` for an event id never issued, ``409`` after the window)."""

    @app.post("/reward", response_model=RewardResponse, tags=["decisions"])
    async def reward(body: RewardRequest) -> Response:
        """Report the reward of a decision (idempotent by event id)."""
        return Response(orjson.dumps(service.reward(body)), media_type="application/json")
