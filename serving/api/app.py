"""``create_app(service)``: the HTTP API of the contract, mapped onto a :class:`DecisionService`.

The app is composed here from one module of routes per resource (:mod:`serving.api.routes`), the
error mapping (:mod:`serving.api.errors`) and the middleware stack, outermost first:
admission control (:mod:`serving.api.admission`), the API-key guard and body size limit
(:mod:`serving.api.guard`), and innermost :class:`serving.api.direct.DirectRoutes`, which
answers ``POST /decide`` without FastAPI's router (the route stays documented).
Handlers are ``async`` and call the service directly on the event loop (no threadpool
hop: the decision path is CPU-bound and sub-millisecond).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from serving.api.admission import AdmissionGate, AdmissionMiddleware
from serving.api.direct import DirectRoutes
from serving.api.errors import install_error_handlers
from serving.api.guard import GuardMiddleware
from serving.api.openapi import document_vocabularies
from serving.api.routes import (
    bench,
    contacts,
    customers,
    dashboard,
    decide,
    events,
    experiments,
    health,
    rewards,
    stages,
)
from serving.api.schemas import ErrorResponse
from serving.dashboard.live import ExperimentsView
from serving.service.decision_service import DecisionService

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 409, 413, 422, 503)
}


def create_app(
    service: DecisionService,
    *,
    api_keys: Iterable[str] = (),
    max_body_bytes: int = 64 * 1024,
    manage_lifecycle: bool = True,
    decide_in_threadpool: bool = False,
    admission: Mapping[str, float] | None = None,
) -> FastAPI:
    """The FastAPI app around ``service``. With ``manage_lifecycle`` the app's lifespan
    starts the service (log recovery, champion loading) and closes it (flush) on shutdown.

    ``decide_in_threadpool`` serves ``/decide`` from a sync handler (Starlette's threadpool)
    instead of on the event loop. Both engines use the async handler: with the benchmark's
    interleaved A/B the two styles are level on uvicorn and the threadpool hop is slower on
    Ray Serve (BENCHMARKS.md, "Serving").

    ``admission`` (``Settings.admission``) adds :class:`serving.api.admission.AdmissionMiddleware`
    outermost: overload is refused with ``503`` + ``Retry-After`` (``None``: no shedding)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            service.start()
        delivery = getattr(service, "delivery", None)
        if delivery is not None:  # the delivery worker drains the outbox on this loop
            delivery.start()
        try:
            yield
        finally:
            triggers = getattr(service, "triggers", None)
            if manage_lifecycle and triggers is not None:  # no timer fires into a stopped delivery
                triggers.stop()
            if delivery is not None:
                await delivery.stop()
            if manage_lifecycle:
                service.close()

    app = FastAPI(
        title="Maestro",
        version="0.1.0",
        description="Real-time next-best-action decisions.",
        lifespan=lifespan,
        responses=_ERRORS,
    )
    app.state.service = service
    if not decide_in_threadpool:  # innermost: after the key guard, size limit and admission
        app.add_middleware(DirectRoutes, routes=decide.direct_routes(service))
    app.add_middleware(GuardMiddleware, api_keys=list(api_keys), max_body_bytes=max_body_bytes)
    if admission is not None:  # added last: outermost, so a refusal costs the least
        # the gate is also what uvicorn's HTTP protocol asks first (serving.engines.uvicorn_shed)
        gate = AdmissionGate(registry=service.metrics.registry, **admission)  # type: ignore[arg-type]
        app.state.admission_gate = gate
        app.add_middleware(AdmissionMiddleware, gate=gate)
    install_error_handlers(app)

    view = ExperimentsView(service)  # one report cache for /experiments and the dashboard
    decide.register(app, service, in_threadpool=decide_in_threadpool)
    rewards.register(app, service)
    contacts.register(app, service)
    events.register(app, service)
    customers.register(app, service)
    health.register(app, service)
    experiments.register(app, view)
    stages.register(app, service)
    dashboard.register(app, service, view)
    bench.register(app, service)
    document_vocabularies(app, service)
    return app
