"""``POST /decisions/{event_id}/activate`` and ``GET /budgets``: the contact policy's routes."""

from __future__ import annotations

import orjson
from fastapi import FastAPI
from fastapi.responses import Response

from serving.api.schemas import ActivationResponse, BudgetsResponse
from serving.service.decision_service import DecisionService


def register(app: FastAPI, service: DecisionService) -> None:
    """Activation (``404`` unknown event id, ``409`` after the reward window) and budgets."""

    @app.post(
        "/decisions/{event_id}/activate", response_model=ActivationResponse, tags=["decisions"]
    )
    async def activate(event_id: str) -> Response:
        """The journey engine sent this decision: at an ``activation: required`` decision
        point it now counts as a contact (and is learned from). Idempotent."""
        return Response(orjson.dumps(service.activate(event_id)), media_type="application/json")

    @app.get("/budgets", response_model=BudgetsResponse, tags=["decisions"])
    async def budgets() -> Response:
        """Each budgeted action: its budget, the units used in the current period, and
        those remaining."""
        return Response(orjson.dumps(service.budgets()), media_type="application/json")
