"""Enqueue → webhook receipt latency of triggered decisions, at a steady request rate.

The delivery side runs as in a server: one asyncio loop holding the delivery worker, the
durable outbox (``--store sqlite``: a SQLite file; ``redis``: a real redis-server on
127.0.0.1, started here) and requests enqueued on that loop at ``--rate`` per second (as
the trigger engine's timers fire) for ``--customers`` customers. The webhook receiver is a
separate process (a minimal asyncio HTTP/1.1 server on 127.0.0.1) that stamps each POST's arrival with the wall
clock; latency = arrival - the moment before ``enqueue`` (both on this machine's clock),
so it counts the durable write, the wake-up, the signed POST and the receiver's accept.

    .venv/bin/python -m benchmarks.bench_delivery [--rate 500] [--seconds 20] [--store sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


class _Receiver(asyncio.Protocol):
    """A minimal HTTP/1.1 keep-alive receiver: stamps each request's arrival, answers 200.
    (Lighter than a framework, so the benchmark's CPU goes to the delivery side.)"""

    arrivals: list[str] = []

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].decode("latin-1").lower()
            length = key = ""
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name == "content-length":
                    length = value.strip()
                elif name == "idempotency-key":
                    key = value.strip()
            end = head_end + 4 + int(length or 0)
            if len(self.buffer) < end:
                return
            self.arrivals.append(f"{key} {time.time()!r}")
            self.buffer = self.buffer[end:]
            self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")


def receive(port: int, out: Path) -> None:
    """Serve until SIGTERM, then write every (idempotency key, arrival) to ``out``."""
    import signal

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Receiver, "127.0.0.1", port)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        server.close()
        out.write_text("\n".join(_Receiver.arrivals))

    asyncio.run(serve())


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, seconds: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def make_outbox(store: str, workdir: Path) -> tuple[object, subprocess.Popen | None]:
    if store == "sqlite":
        from serving.state.outbox_sqlite import SQLiteOutbox

        return SQLiteOutbox(workdir / "deliveries.db"), None
    from serving.state.outbox_redis import RedisOutbox

    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir)], stdout=subprocess.DEVNULL)
    wait_port(port)
    return RedisOutbox(f"redis://127.0.0.1:{port}/0"), proc


async def drive(delivery, n: int, rate: float, customers: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from serving.delivery.ports import DeliveryRequest

    delivery.start()
    sent: dict[str, float] = {}
    cpu = time.process_time()
    start = time.perf_counter()
    for i in range(n):
        target = start + i / rate
        pause = target - time.perf_counter()
        if pause > 0:
            await asyncio.sleep(pause)
        key = f"bench-{i:07d}"
        cid = f"c{i % customers:05d}"
        request = DeliveryRequest(key, "bench", "hook", cid, "default",
                                  {"event_id": key, "action_id": "email_newsletter",
                                   "channel": "email", "probability": 0.4}, time.time())
        sent[key] = time.time()
        delivery.enqueue(request)
    box = delivery.outbox
    deadline = time.monotonic() + 60
    while box.counts()["delivered"] < n and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await delivery.stop()
    sent["__cpu_ms"] = (time.process_time() - cpu) * 1000 / n
    return sent


def run(rate: float, seconds: float, customers: int, store: str) -> dict[str, float]:
    from prometheus_client import CollectorRegistry

    from serving.delivery.config import WebhookDestination
    from serving.delivery.factory import Delivery
    from serving.delivery.metrics import DeliveryMetrics
    from serving.delivery.senders import Senders
    from serving.delivery.worker import DeliveryWorker, RetryPolicy

    workdir = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    port, out = free_port(), workdir / "arrivals.txt"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    receiver = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_delivery",
                                 "--receive", str(port), "--out", str(out)], env=env)
    redis_proc = None
    try:
        wait_port(port)
        box, redis_proc = make_outbox(store, workdir)
        hook = WebhookDestination("hook", f"http://127.0.0.1:{port}/hook", "S", b"bench-secret")
        metrics = DeliveryMetrics(CollectorRegistry())
        worker = DeliveryWorker(box, {"hook": hook}, Senders(5.0), None, metrics,  # type: ignore[arg-type]
                                RetryPolicy())
        n = int(rate * seconds)
        sent = asyncio.run(drive(Delivery(box, worker, metrics), n, rate, customers))  # type: ignore[arg-type]
    finally:
        receiver.terminate()
        receiver.wait(timeout=30)
        if redis_proc is not None:
            redis_proc.terminate()
    cpu_ms = sent.pop("__cpu_ms")
    arrivals = dict(line.split() for line in out.read_text().splitlines() if line)
    lat = np.array([float(arrivals[k]) - t for k, t in sent.items() if k in arrivals]) * 1000
    return {"n": n, "received": len(arrivals), "lost": n - len(set(arrivals) & set(sent)),
            "p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
            "max": float(lat.max()), "cpu_ms": cpu_ms}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rate", default="500", help="requests/s; several: 100,250,500")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--customers", type=int, default=1000)
    ap.add_argument("--store", choices=["sqlite", "redis", "both"], default="both")
    ap.add_argument("--write", action="store_true", help="write the BENCHMARKS.md section")
    ap.add_argument("--receive", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.receive:
        receive(args.receive, args.out)
        return
    rows = []
    for rate in [float(x) for x in str(args.rate).split(",")]:
        for store in (["sqlite", "redis"] if args.store == "both" else [args.store]):
            r = run(rate, args.seconds, args.customers, store)
            print(f"{store} at {rate:.0f}/s: {r}", flush=True)
            rows.append((store, {**r, "rate": rate}))
    if args.write:
        write(args, rows)


def write(args: argparse.Namespace, rows: list[tuple[str, dict[str, float]]]) -> None:
    from benchmarks._report import machine, write_section

    table = "\n".join(
        f"| {store} | {r['rate']:.0f} | {r['n']:.0f} | {r['lost']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | "
        f"{r['max']:.1f} | {r['cpu_ms']:.2f} |" for store, r in rows)
    write_section("Delivery: enqueue to webhook receipt (issue #20)", f"""
`python -m benchmarks.bench_delivery --rate {args.rate} --seconds {args.seconds:.0f} \
--customers {args.customers} --write` on {machine()}, shared with other work while it ran
(load average {os.getloadavg()[0]:.1f} at the end). Requests are enqueued on the worker's
event loop at each rate for {args.customers}
customers (as fired timers hand them over), stored durably in the outbox, sent as signed
POSTs to a receiver in another process (a minimal asyncio HTTP/1.1 server on 127.0.0.1),
which stamps each arrival.
Latency: arrival minus the moment before `enqueue`, in ms. Target: p99 at most 50 ms.

| outbox | rate/s | requests | lost | p50 | p99 | max | CPU ms per delivery |
|---|---|---|---|---|---|---|---|
{table}
""")


if __name__ == "__main__":
    main()
