"""uvicorn's HTTP protocol refusing at the protocol (serving/engines/uvicorn_shed.py), in a real
uvicorn server on 127.0.0.1 over raw sockets: the refusal is the contract's 503 with
``Retry-After`` and the JSON error, written before the app is called; the connection
stays usable; a request body is skipped; exempt paths and HTTP/1.0 behave."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import orjson
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response

from serving.api.admission import AdmissionGate, AdmissionMiddleware

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def shed_server() -> Iterator[tuple[int, AdmissionGate, list[str]]]:
    import uvicorn

    from serving.engines.runner import uvicorn_config

    calls: list[str] = []
    app = FastAPI()
    gate = AdmissionGate(max_in_flight=4, queue_budget_ms=0, retry_after_s=2)
    app.state.admission_gate = gate
    app.add_middleware(AdmissionMiddleware, gate=gate)

    @app.post("/decide")
    async def decide(request: Request) -> Response:
        calls.append((await request.body()).decode())
        return Response(b'{"ok":true}', media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield port, gate, calls
    server.should_exit = True
    thread.join(timeout=10)


def _request(path: str, body: bytes = b"", version: str = "1.1", method: str = "POST") -> bytes:
    head = f"{method} {path} HTTP/{version}\r\nHost: 127.0.0.1\r\n"
    if body or method == "POST":
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before a response"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside a body"
        rest += chunk
    assert len(rest) == length, "more bytes than one response"
    return int(lines[0].split()[1]), headers, rest


def test_refusal_is_written_by_the_protocol_and_the_connection_stays_usable(shed_server) -> None:
    port, gate, calls = shed_server
    body = orjson.dumps({"customer_id": "c-1", "pad": "x" * 20_000})  # several TCP reads
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        gate.in_flight = gate.max_in_flight  # a full house: the gate refuses
        before = dict(gate.rejected)
        n_calls = len(calls)
        sock.sendall(_request("/decide", body))
        status, headers, payload = _read_response(sock)
        assert status == 503 and headers["retry-after"] == "2"
        assert headers["content-type"] == "application/json"
        assert orjson.loads(payload)["detail"][0]["type"] == "OverloadedError"
        assert "connection" not in headers  # keep-alive
        assert gate.rejected["in_flight"] == before["in_flight"] + 1
        assert len(calls) == n_calls  # the app never saw it
        # liveness is exempt, even now, on the same connection
        sock.sendall(_request("/healthz", method="GET"))
        assert _read_response(sock)[0] == 200
        gate.in_flight = 0  # room again: the next request on this connection is served
        sock.sendall(_request("/decide", b'{"n": 2}'))
        status, _, payload = _read_response(sock)
        assert status == 200 and payload == b'{"ok":true}' and calls[-1] == '{"n": 2}'


def test_refusal_closes_an_http_1_0_connection(shed_server) -> None:
    port, gate, _ = shed_server
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        gate.in_flight = gate.max_in_flight
        try:
            sock.sendall(_request("/decide", b"{}", version="1.0"))
            status, headers, _ = _read_response(sock)
        finally:
            gate.in_flight = 0
        assert status == 503 and headers["connection"] == "close"
        assert sock.recv(1) == b""  # closed by the server


def test_the_middleware_still_refuses_what_reaches_the_app(shed_server) -> None:
    """Requests that pass the protocol (the gate said yes) meet the same gate in the
    middleware: in-flight accounting is the middleware's."""
    port, gate, _ = shed_server
    admitted = gate.admitted
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(_request("/decide", b"{}"))
        assert _read_response(sock)[0] == 200
    assert gate.admitted == admitted + 1 and gate.in_flight == 0
