"""Triggers end to end: from the event (or the timer's expiry) to the webhook's receipt.

A real ``maestro`` uvicorn server process (in-memory features, ``--customers`` customers,
SQLite timers and delivery outbox under a temporary workspace) with two triggers: one
without a dwell (``page_view`` of ``pricing``: decided and delivered at once) and one with a
one-second dwell (``cart_updated``: fires when its timer expires). A real webhook receiver
(an HTTP server in this process, on 127.0.0.1) records when each delivery arrives. Events
are posted at ``--rate`` per second for ``--seconds``, alternating the two types over the
customers.

Reports p50/p99/max of receipt − event sent (no dwell) and receipt − (event sent + dwell)
(the timer's expiry, measured from the client's clock: it includes the event's own
request, about a millisecond), and how many were received. Run pinned on a quiet machine
for figures to compare.

    PYTHONPATH=. python -m benchmarks.bench_triggers [--rate 500] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DWELL = 1.0
CATALOG = """
defaults:
  reward_window_hours: 24
  rules: {consent_channels: [email]}
decision_points:
  default:
    actions:
      - {id: no_contact, channel: none, features: {category: none}}
  hot_lead:
    actions:
      - {id: email_am, channel: email, features: {category: service, offer: none}}
"""
TRIGGERS = """
destinations:
  hook: {{webhook: "{url}", secret_env: BENCH_HOOK_SECRET}}
triggers:
  on_pricing:
    on: {{type: page_view, when: ["event.properties.page == 'pricing'"]}}
    decide: {{decision_point: hot_lead}}
    deliver: hook
  cart_dwell:
    on: {{type: cart_updated}}
    dwell: {{seconds: {dwell}}}
    decide: {{decision_point: hot_lead}}
    deliver: hook
"""


class Receiver:
    """Records (trigger, customer) → receipt times."""

    def __init__(self) -> None:
        self.got: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                at = time.time()
                doc = json.loads(body)
                with receiver.lock:
                    receiver.got[(doc["trigger"], doc["customer_id"])].append(at)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def count(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.got.values())


def serve(home: Path, port: int, customers: int) -> None:
    """The server process: the workspace at ``home`` over in-memory features."""
    import uvicorn

    from features.source import InMemoryFeatureSource
    from serving.engines.runner import uvicorn_config
    from serving.factory import build_app
    from serving.service.feature_layer import InMemoryFeatureLayer
    from serving.settings import Settings

    rows = {f"c{i}": {"consent_email": True, "timezone": "UTC"} for i in range(customers)}
    settings = Settings(home=home, mlflow_tracking_uri=f"sqlite:///{home / 'mlflow.db'}",
                        feature_source="memory", timer_poll_seconds=0.01,
                        delivery_poll_seconds=0.05)
    app = build_app(settings, InMemoryFeatureLayer(InMemoryFeatureSource(rows)))
    uvicorn.Server(uvicorn_config(app, "127.0.0.1", port)).run()  # type: ignore[arg-type]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post_events(base: str, rate: float, seconds: float, customers: int
                 ) -> dict[tuple[str, str], list[float]]:
    import httpx

    sent: dict[tuple[str, str], list[float]] = defaultdict(list)
    shed = [0]
    n = int(rate * seconds)
    start = time.perf_counter()
    with httpx.Client(base_url=base, timeout=10) as client:
        for i in range(n):
            due = start + i / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            cid = f"c{i % customers}"
            pricing = i % 2 == 0
            kind, props = (("page_view", {"page": "pricing"}) if pricing
                           else ("cart_updated", {"cart_value": 10.0}))
            at = time.time()
            r = client.post("/events", json={"customer_id": cid, "type": kind,
                                             "properties": props})
            if r.status_code == 503:  # shed by admission control: never reached a trigger
                shed[0] += 1
                continue
            if r.status_code != 202:
                raise RuntimeError(f"/events answered {r.status_code}: {r.text}")
            if pricing:
                sent[("on_pricing", cid)].append(at)
                continue
            times = sent[("cart_dwell", cid)]
            if times and times[-1] > at:  # a new cart_updated within the dwell restarts it
                times.pop()
            times.append(at + DWELL)
    took = time.perf_counter() - start
    print(f"posted {n} events in {took:.1f} s ({n / took:.0f}/s), {shed[0]} shed (503)",
          flush=True)
    return sent


def _latencies(sent: dict, got: dict, trigger: str) -> list[float]:
    out = []
    for (name, cid), times in sent.items():
        if name != trigger:
            continue
        received = sorted(got.get((name, cid), []))
        out += [(r - s) * 1000 for s, r in zip(times, received, strict=False)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--serve", nargs=2, metavar=("HOME", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]), args.customers)
        return
    receiver = Receiver()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        (home / "catalog.yaml").write_text(CATALOG)
        (home / "triggers.yaml").write_text(TRIGGERS.format(url=receiver.url, dwell=DWELL))
        port = _free_port()
        env = {**os.environ, "BENCH_HOOK_SECRET": "bench", "FEAST_USAGE": "False",
               "MLFLOW_ENABLE_TELEMETRY": "false", "DO_NOT_TRACK": "1"}
        proc = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_triggers", "--serve",
                                 str(home), str(port), "--customers", str(args.customers)],
                                env=env)
        try:
            import httpx

            base = f"http://127.0.0.1:{port}"
            for _ in range(600):
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            sent = _post_events(base, args.rate, args.seconds, args.customers)
            expected = sum(len(v) for v in sent.values())
            deadline = time.time() + DWELL + 30
            while receiver.count() < expected and time.time() < deadline:
                time.sleep(0.1)
            _report(args, sent, receiver, expected)
        finally:
            stopped = time.time()
            proc.terminate()
            try:
                proc.wait(timeout=60)
                print(f"server stopped in {time.time() - stopped:.1f} s")
            except subprocess.TimeoutExpired:
                proc.kill()
                raise


def _report(args: argparse.Namespace, sent: dict, receiver: Receiver, expected: int) -> None:
    got = dict(receiver.got)
    print(f"rate {args.rate:g}/s for {args.seconds:g} s, {args.customers} customers: "
          f"{receiver.count()} of {expected} received", flush=True)
    for trigger, label in (("on_pricing", "event → receipt (no dwell)"),
                           ("cart_dwell", "timer expiry → receipt (1 s dwell)")):
        ms = sorted(_latencies(sent, got, trigger))
        if not ms:
            print(f"{label}: none received")
            continue
        p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))]
        print(f"{label}: n={len(ms)} p50 {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms, "
              f"max {ms[-1]:.1f} ms", flush=True)


if __name__ == "__main__":
    main()
