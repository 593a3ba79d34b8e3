"""uvicorn's HTTP protocol with admission control at the protocol: refusals that cost
almost nothing, so one process can shed five times what it can serve (RELIABILITY.md,
item 7).

A refusal through the ASGI middleware (:class:`serving.api.admission.AdmissionMiddleware`)
still costs what uvicorn spends on any request before the app sees it — a
``RequestResponseCycle``, an ``asyncio`` task, the ASGI call chain, the response
messages — about as much as a cheap decision. Once ``/decide`` got fast (a decision
over the contract's 100-action maximum at ~720 per second on one core), five times that
rate was more than the process could even refuse: it spent its core on refusals and the
accepted requests queued for seconds in the kernel. This protocol asks the same
:class:`~serving.api.admission.AdmissionGate` as soon as a request's headers are parsed and,
when it refuses, writes the ready-made ``503`` (``Retry-After``, the contract's JSON
error, the gate's count and metric) straight to the socket: no cycle, no task, no app.
The rest of that request's body is skipped by uvicorn's own parser callbacks (they ignore
a request whose response is complete) and the connection stays usable (keep-alive).

Only a request that would start at once is refused here (not one pipelined behind a
request still in progress on its connection, whose answer must come first); those, and
everything on Ray Serve, meet the same gate in the middleware. Written against uvicorn
0.54's ``HttpToolsProtocol`` (its ``on_headers_complete``, ``cycle`` and
``on_response_complete``); ``tests/serving/test_uvicorn_shed.py`` runs it in a real
server, so a uvicorn that changed them fails there.
"""

from __future__ import annotations

from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from serving.api.admission import AdmissionGate


class _Refused:
    """Stands in for the refused request's cycle: complete, so uvicorn's ``on_body`` and
    ``on_message_complete`` skip the rest of the request."""

    __slots__ = ("keep_alive",)
    response_complete = True

    def __init__(self, keep_alive: bool) -> None:
        self.keep_alive = keep_alive


class SheddingHttpToolsProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` that refuses, before creating anything, what the app's
    :class:`AdmissionGate` (``app.state.admission_gate``) refuses."""

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        state = getattr(config.app, "state", None)
        self.gate: AdmissionGate | None = getattr(state, "admission_gate", None)

    def on_headers_complete(self) -> None:
        gate = self.gate
        previous = self.cycle
        if (
            gate is not None
            and (previous is None or previous.response_complete)
            and not self.parser.should_upgrade()
        ):
            path = httptools.parse_url(self.url).path.decode("ascii", "replace")
            reason = gate.refusal(path)
            if reason is not None:
                keep_alive = (
                    self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
                )
                self.transport.write(gate.wire_response(reason, keep_alive))
                self.cycle = _Refused(keep_alive)  # type: ignore[assignment]
                if keep_alive:
                    self.on_response_complete()  # re-arms keep-alive, resumes reading
                else:
                    self.transport.close()
                return
        super().on_headers_complete()
