"""Admission control for both engines: shed load with ``503`` + ``Retry-After`` instead
of queueing it (RELIABILITY.md, item 7).

One pure-ASGI middleware (no ``BaseHTTPMiddleware``: a rejection costs a few
microseconds and never reads the body) with two bounds:

- **in flight**: requests inside the app at once (those that ``await``: threadpool
  routes, chunked bodies). Beyond ``max_in_flight`` a request is refused.
- **queue time**: how long a request waited on the event loop before reaching the app.
  ``/decide`` is an ``async`` handler that never yields, so under overload the in-flight
  count stays at one while the backlog grows *in front of* the app: in the event loop's
  ready queue (the tasks uvicorn, or Ray Serve's direct-ingress HTTP server, created for
  the requests read in one poll) and in the kernel's socket buffers behind it. The
  middleware measures the ready-queue part: a callback scheduled with ``call_soon`` runs
  at the start of each loop iteration, before the request tasks of that iteration, and
  stamps the time; a request's wait in the loop is ``now - stamp``. The requests of a
  batch were read from the kernel at its start and arrived while the previous batch
  ran, so their wait before that is on average half the previous batch's length; the
  estimate is the sum of the two. A request whose estimate is over ``queue_budget_ms``
  is refused. Refusals are cheap, so a batch that follows a long one is short: the
  kernel-side wait stays near one budget too. The stamping callback re-arms itself only
  while requests keep arriving, so an idle loop does not spin.

The decision lives in :class:`AdmissionGate`; the middleware asks it for every request
that reaches the app, and on uvicorn the HTTP protocol asks it first, as soon as a
request's headers are parsed (:mod:`serving.engines.uvicorn_shed`): a refusal there writes the
ready-made response and creates nothing, so one process can refuse several times what
it can serve.

This is queue-delay shedding in the spirit of CoDel (Nichols & Jacobson, "Controlling
Queue Delay", ACM Queue 10(5), 2012) and of the adaptive LIFO/timeout admission of
Facebook's server stack (Maurer, "Fail at Scale", ACM Queue 13(8), 2015): bound the
*time* a request may queue, not the queue's length, because the length cannot be seen.

Why not the engines' own bounds: uvicorn's ``limit_concurrency`` answers ``503`` without
``Retry-After`` (``uvicorn/protocols/http/flow_control.py``) and counts connections, not
waiting time; Ray Serve's ``max_queued_requests`` (with ``RAY_SERVE_THROUGHPUT_OPTIMIZED``
the replica serves HTTP itself, "direct ingress") counts only requests waiting for a
``max_ongoing_requests`` slot, and a handler that never yields never fills those slots,
so the backlog in HAProxy, the socket and the loop is invisible to it
(``ray/serve/_private/replica.py``, ``_can_accept_request``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.errors import OverloadedError

#: never shed: liveness, readiness and metrics must answer under overload
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class _LoopClock:
    """When the event loop started the batch of callbacks the current request is in, and
    how long the batch before it took (the time requests spent unread in the kernel)."""

    __slots__ = ("armed", "busy", "carry", "loop", "stamp")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.stamp = 0.0
        self.carry = 0.0  # expected wait before the loop read the request
        self.armed = False  # a stamping callback is scheduled
        self.busy = False  # a request arrived since the last stamp

    def waited(self, now: float) -> float:
        """Estimated seconds this request waited before reaching the app."""
        if not self.armed:
            # the loop was idle: this request is the first of its batch, read at once
            self.armed = True
            self.stamp = now
            self.carry = 0.0
            self.loop.call_soon(self._tick)
        self.busy = True
        return self.carry + now - self.stamp

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.busy:
            # requests of this batch arrived while the previous one ran: on average
            # half of it ago (uniform arrivals)
            self.carry = (now - self.stamp) / 2
            self.stamp = now
            self.busy = False
            self.loop.call_soon(self._tick)
        else:
            self.stamp = now
            self.carry = 0.0
            self.armed = False


class AdmissionGate:
    """The admission decision, shared by the ASGI middleware and (on uvicorn) the HTTP
    protocol (:mod:`serving.engines.uvicorn_shed`), which refuses before any per-request object
    exists. ``0`` turns a bound off."""

    def __init__(
        self,
        *,
        max_in_flight: int = 32,
        queue_budget_ms: float = 50.0,
        retry_after_s: int = 1,
        registry: object | None = None,
        exempt: Iterable[str] = EXEMPT_PATHS,
    ) -> None:
        self.max_in_flight = max_in_flight
        self.budget = queue_budget_ms / 1000.0
        self.exempt = frozenset(exempt)
        self.in_flight = 0
        self.admitted = 0
        self.rejected = {"in_flight": 0, "queue_time": 0}
        self._clocks: dict[int, _LoopClock] = {}
        self.bodies = {
            reason: _body(reason, max_in_flight, queue_budget_ms) for reason in self.rejected
        }
        self.retry_after = str(max(1, int(retry_after_s))).encode()
        self._counter = None
        if registry is not None:
            from prometheus_client import Counter

            self._counter = Counter(
                "maestro_admission_rejected",
                "Requests refused with 503 by admission control",
                ["reason"],
                registry=registry,  # type: ignore[arg-type]
            )
        self._wire = {
            (reason, keep): _wire(body, self.retry_after, keep)
            for reason, body in self.bodies.items()
            for keep in (True, False)
        }

    def _clock(self) -> _LoopClock:
        loop = asyncio.get_running_loop()
        clock = self._clocks.get(id(loop))
        if clock is None or clock.loop is not loop:
            clock = self._clocks[id(loop)] = _LoopClock(loop)
        return clock

    def refusal(self, path: str) -> str | None:
        """Why a request for ``path`` arriving now is refused (counted), or None."""
        if path in self.exempt:
            return None
        reason = None
        if self.budget > 0 and self._clock().waited(time.perf_counter()) > self.budget:
            reason = "queue_time"
        elif self.max_in_flight and self.in_flight >= self.max_in_flight:
            reason = "in_flight"
        if reason is not None:
            self.rejected[reason] += 1
            if self._counter is not None:
                self._counter.labels(reason).inc()
        return reason

    def wire_response(self, reason: str, keep_alive: bool) -> bytes:
        """The whole HTTP/1.1 refusal, status line to body, for writing to a socket."""
        return self._wire[(reason, keep_alive)]


class AdmissionMiddleware:
    """Refuse with ``503``, ``Retry-After`` and the contract's JSON error what ``gate``
    (an :class:`AdmissionGate`, or one built from the keyword arguments) refuses."""

    def __init__(self, app: ASGIApp, *, gate: AdmissionGate | None = None, **options: Any) -> None:
        self.app = app
        self.gate = gate if gate is not None else AdmissionGate(**options)
        self._headers = [
            (b"content-type", b"application/json"),
            (b"retry-after", self.gate.retry_after),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        gate = self.gate
        reason = gate.refusal(scope["path"])
        if reason is not None:
            body = gate.bodies[reason]
            headers = [*self._headers, (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        gate.in_flight += 1
        gate.admitted += 1
        try:
            await self.app(scope, receive, send)
        finally:
            gate.in_flight -= 1


def _wire(body: bytes, retry_after: bytes, keep_alive: bool) -> bytes:
    return (
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
        + b"retry-after: "
        + retry_after
        + b"\r\n"
        + b"content-length: "
        + str(len(body)).encode()
        + b"\r\n"
        + (b"" if keep_alive else b"connection: close\r\n")
        + b"\r\n"
        + body
    )


def _body(reason: str, max_in_flight: int, budget_ms: float) -> bytes:
    problem = (
        f"overloaded: more than {max_in_flight} requests in flight"
        if reason == "in_flight"
        else f"overloaded: the request waited more than {budget_ms:g} ms to be served"
    )
    return orjson.dumps({"detail": [OverloadedError(problem).detail()]})
