"""``POST /events``: customer events that change real-time features."""

from __future__ import annotations

import orjson
from fastapi import FastAPI
from fastapi.responses import Response

from serving.api.schemas import EventAccepted, EventRequest
from serving.service.decision_service import DecisionService


def register(app: FastAPI, service: DecisionService) -> None:
    """``POST /events`` → ``202`` (an unknown type or a malformed event: ``422``)."""

    @app.post("/events", status_code=202, response_model=EventAccepted, tags=["features"])
    async def events(body: EventRequest) -> Response:
        """Ingest a customer event; its real-time features are visible to the next /decide."""
        return Response(
            orjson.dumps(service.ingest(body)), status_code=202, media_type="application/json"
        )
