"""A real webhook receiver for the delivery tests: an HTTP server on 127.0.0.1 (in a thread
of the test process) that records every POST it gets, and that a test can take down (the
port refuses connections) and bring back up on the same port, or make answer a chosen
status."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from live_servers import free_port


@dataclass(frozen=True)
class Received:
    """One POST as it arrived: the exact body bytes and the headers that matter."""

    body: bytes
    signature: str
    idempotency_key: str
    at: float

    def verifies(self, secret: bytes) -> bool:
        """Whether ``X-Maestro-Signature`` is the HMAC-SHA256 of the body under ``secret``."""
        expected = "sha256=" + hmac.new(secret, self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.signature)


@dataclass
class WebhookReceiver:
    """``start()``/``stop()`` serve and refuse on one port; ``status`` is what it answers."""

    port: int = field(default_factory=free_port)
    status: int = 200
    #: seconds each answer waits after the request is recorded (a slow receiver)
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver.status
                if 200 <= status < 300:
                    with receiver._lock:
                        receiver.received.append(Received(
                            body, self.headers.get("X-Maestro-Signature", ""),
                            self.headers.get("Idempotency-Key", ""), time.time()))
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def delivered_keys(self) -> list[str]:
        with self._lock:
            return [r.idempotency_key for r in self.received]

    def wait_for(self, n: int, timeout: float = 30.0) -> list[Received]:
        """The first ``n`` receipts, waiting up to ``timeout`` seconds for them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= n:
                    return list(self.received)
            time.sleep(0.01)
        raise TimeoutError(f"{len(self.received)} of {n} deliveries arrived in {timeout} s")
