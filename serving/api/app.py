"""``create_app(service)``: the HTTP API of the contract, mapped onto a :class:`DecisionService`.

Handlers are ``async`` and call the service directly on the event loop (no threadpool
hop: the decision path is CPU-bound and sub-millisecond); ``POST /decide`` is answered
innermost in the middleware stack, without FastAPI's router (:mod:`serving.api.direct`), and
stays documented by its FastAPI route. Authentication and the body
size limit are one pure-ASGI middleware (cheaper than Starlette's ``BaseHTTPMiddleware``).
One exception handler maps the three error roots (:class:`policies.errors.PolicyError`,
:class:`features.errors.FeatureStoreError`, :class:`serving.errors.ServingError`) and
pydantic's validation errors to ``{"detail": [{"field", "problem", "type"}]}``.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from features.events import EVENT_TYPES
from serving.api.admission import AdmissionGate, AdmissionMiddleware
from serving.api.direct import (
    DOMAIN_ERRORS,
    DirectRoutes,
    Handler,
    domain_response,
    error_response,
    validation_response,
)
from serving.api.fast_decode import decode_decide
from serving.api.schemas import (
    DecideRequest,
    DecideResponse,
    ErasureResponse,
    ErrorResponse,
    EventAccepted,
    EventRequest,
    RewardRequest,
    RewardResponse,
)
from serving.dashboard.live import ExperimentsView, dashboard_data
from serving.dashboard.live import page as dashboard_page
from serving.service.decision_service import DecisionService
from serving.service.metrics import CONTENT_TYPE

logger = logging.getLogger(__name__)
OPEN_PATHS = frozenset({"/healthz", "/metrics"})
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 409, 413, 422, 503)
}


class GuardMiddleware:
    """API keys (``Authorization: Bearer <key>``, any listed key) and the body size limit."""

    def __init__(self, app: ASGIApp, api_keys: Iterable[str], max_body_bytes: int) -> None:
        self.app = app
        self.keys = [k.encode() for k in api_keys]
        self.max_body = max_body_bytes

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() != b"bearer":
                    return False
                token = token.strip()
                return any(hmac.compare_digest(token, k) for k in self.keys)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.keys and scope["path"] not in OPEN_PATHS and not self._authorized(scope):
            err = error_response(
                401,
                "authorization",
                "missing or invalid API key (Authorization: Bearer <key>)",
                "UnauthorizedError",
                {"WWW-Authenticate": "Bearer"},
            )
            await err(scope, receive, send)
            return
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None and length.isdigit() and int(length) > self.max_body:
            err = error_response(
                422, "body", f"request body over {self.max_body} bytes", "PayloadTooLargeError"
            )
            await err(scope, receive, send)
            return
        if length is None and scope["method"] in ("POST", "PUT", "PATCH"):
            # chunked upload: read it here, within the limit, then replay it to the app
            chunks: list[bytes] = []
            size = 0
            more = True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    break
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                more = message.get("more_body", False)
                if size > self.max_body:
                    err = error_response(
                        422,
                        "body",
                        f"request body over {self.max_body} bytes",
                        "PayloadTooLargeError",
                    )
                    await err(scope, receive, send)
                    return
            body = b"".join(chunks)
            sent = False

            async def replay() -> Message:
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
            return
        await self.app(scope, receive, send)


def direct_routes(service: DecisionService) -> dict[tuple[str, str], Handler]:
    """What :class:`serving.api.direct.DirectRoutes` answers without FastAPI: ``/decide`` and
    the benchmark's baseline ``/_empty`` (the same path through the same middleware, so
    "``/decide`` over empty" is the decision's own cost). ``/decide`` bodies are decoded by
    :func:`serving.api.fast_decode.decode_decide` (msgspec, falling back to the schema)."""

    def decide(body: bytes) -> bytes:
        return service.decide(decode_decide(body))

    return {("POST", "/decide"): decide, ("POST", "/_empty"): lambda _body: b"{}"}


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
        try:
            yield
        finally:
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
        app.add_middleware(DirectRoutes, routes=direct_routes(service))
    app.add_middleware(GuardMiddleware, api_keys=list(api_keys), max_body_bytes=max_body_bytes)
    if admission is not None:  # added last: outermost, so a refusal costs the least
        # the gate is also what uvicorn's HTTP protocol asks first (serving.engines.uvicorn_shed)
        gate = AdmissionGate(registry=service.metrics.registry, **admission)  # type: ignore[arg-type]
        app.state.admission_gate = gate
        app.add_middleware(AdmissionMiddleware, gate=gate)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> Response:
        return validation_response(exc.errors())

    async def _domain(_request: Request, exc: Exception) -> Response:
        return domain_response(exc)

    for root in DOMAIN_ERRORS:
        app.add_exception_handler(root, _domain)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> Response:
        # FastAPI's own 4xx (an undecodable body: 400; unknown path: 404; wrong method:
        # 405) in the same {"detail": [{field, problem, type}]} shape as every other error
        field = "body" if exc.status_code == 400 else None
        return error_response(exc.status_code, field, str(exc.detail), "HTTPError", exc.headers)

    if decide_in_threadpool:

        @app.post("/decide", response_model=DecideResponse, tags=["decisions"])
        def decide_sync(body: DecideRequest) -> Response:
            """Choose the next best action for one customer at one decision point."""
            return Response(service.decide(body), media_type="application/json")

    else:

        @app.post("/decide", response_model=DecideResponse, tags=["decisions"])
        async def decide(body: DecideRequest) -> Response:
            """Choose the next best action for one customer at one decision point."""
            return Response(service.decide(body), media_type="application/json")

    @app.post("/reward", response_model=RewardResponse, tags=["decisions"])
    async def reward(body: RewardRequest) -> Response:
        """Report the reward of a decision (idempotent by event id)."""
        return Response(orjson.dumps(service.reward(body)), media_type="application/json")

    @app.post("/events", status_code=202, response_model=EventAccepted, tags=["features"])
    async def events(body: EventRequest) -> Response:
        """Ingest a customer event; its real-time features are visible to the next /decide."""
        return Response(
            orjson.dumps(service.ingest(body)), status_code=202, media_type="application/json"
        )

    @app.delete("/customers/{customer_id}", response_model=ErasureResponse, tags=["features"])
    async def erase(customer_id: str) -> Response:
        """Erase one customer from the online store and the decision logs."""
        return Response(orjson.dumps(service.erase(customer_id)), media_type="application/json")

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> Response:
        checks = service.ready()
        status = 200 if all(checks.values()) else 503
        return JSONResponse({"ready": status == 200, **checks}, status_code=status)

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    async def metrics() -> Response:
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)

    experiments_view = ExperimentsView(service)

    @app.get("/experiments", tags=["experiments"])
    def experiments() -> Response:
        """Per decision point: each variant's decisions, rewards, mean reward and lift
        over the holdout and ``rules`` with 95% intervals (read from the Parquet logs)."""
        return Response(
            orjson.dumps(experiments_view.report(), option=orjson.OPT_SERIALIZE_NUMPY),
            media_type="application/json",
        )

    @app.get("/dashboard", tags=["experiments"], response_class=HTMLResponse)
    async def dashboard() -> Response:
        """The live dashboard page (static; it polls ``/dashboard/data``)."""
        return HTMLResponse(dashboard_page())

    @app.get("/dashboard/data", tags=["experiments"])
    def dashboard_json() -> Response:
        """What the dashboard draws: live series and the reward rate per variant."""
        data = dashboard_data(service, experiments_view.report())
        return Response(
            orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json"
        )

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

    _document_vocabularies(app, service)
    return app


def _document_vocabularies(app: FastAPI, service: DecisionService) -> None:
    """Name the served catalog's decision points and the known event types as enums in
    ``/openapi.json`` (issue #7: a schema-valid request is then never refused for an
    unknown name, which schemathesis' positive-data check holds the API to)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        props = schema.get("components", {}).get("schemas", {})
        points = sorted(getattr(service.catalog, "decision_points", {}) or {})
        decide = props.get("DecideRequest", {}).get("properties", {})
        if points and "decision_point" in decide:
            decide["decision_point"] = {**decide["decision_point"], "enum": points}
        event = props.get("EventRequest", {}).get("properties", {})
        if "type" in event:
            event["type"] = {**event["type"], "enum": list(EVENT_TYPES)}
        _exact_key_patterns(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _exact_key_patterns(node: Any) -> None:
    """pydantic writes ``dict[Key, V]`` with a key pattern as ``patternProperties``, which
    lets keys that miss the pattern through; say what is validated instead: the pattern
    on ``propertyNames`` and the value schema as ``additionalProperties``."""
    if isinstance(node, dict):
        patterns = node.get("patternProperties")
        if isinstance(patterns, dict) and len(patterns) == 1 and "propertyNames" in node:
            ((pattern, value),) = patterns.items()
            node["propertyNames"] = {**node["propertyNames"], "pattern": pattern}
            node["additionalProperties"] = value
            del node["patternProperties"]
        for child in node.values():
            _exact_key_patterns(child)
    elif isinstance(node, list):
        for child in node:
            _exact_key_patterns(child)
