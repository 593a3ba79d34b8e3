"""``DELETE /customers/{customer_id}``: erase one customer (the service does the work)."""

from __future__ import annotations

import orjson
from fastapi import FastAPI
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from serving.api.schemas import ErasureResponse
from serving.service.decision_service import DecisionService


def register(app: FastAPI, service: DecisionService) -> None:
    """``DELETE /customers/{customer_id}`` → ``200`` with counts of what was erased."""

    @app.delete("/customers/{customer_id}", response_model=ErasureResponse, tags=["features"])
    async def erase(customer_id: str) -> Response:
        """Erase one customer from the online store and the decision logs."""
        erased = await run_in_threadpool(service.erase, customer_id)  # long: off the loop
        return Response(orjson.dumps(erased), media_type="application/json")
