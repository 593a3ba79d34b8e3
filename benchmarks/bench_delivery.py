"""Enqueue → webhook receipt latency of triggered decisions, at a steady request rate.

The delivery side runs as in a server: one asyncio loop holding the delivery worker, the
durable outbox (``--store sqlite``: a SQLite file; ``redis``: a real redis-server on
127.0.0.1, started here) and requests enqueued on that loop at ``--rate`` per second (as
the trigger engine's timers fire) for ``--customers`` customers. The webhook receiver is a
separate process (uvicorn on 127.0.0.1) that stamps each POST's arrival with the wall
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


def receiver_app(out: Path):  # type: ignore[no-untyped-def]
    """An ASGI app answering every POST 200 and remembering (idempotency key, arrival)."""
    arrivals: list[str] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    out.write_text("\n".join(arrivals))
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        at = time.time()
        key = dict(scope["headers"]).get(b"idempotency-key", b"").decode()
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        arrivals.append(f"{key} {at!r}")
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    return app


def receive(port: int, out: Path) -> None:
    import uvicorn

    uvicorn.run(receiver_app(out), host="127.0.0.1", port=port, log_level="warning",
                lifespan="on", access_log=False)


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
    ap.add_argument("--rate", type=float, default=500.0)
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
    for store in (["sqlite", "redis"] if args.store == "both" else [args.store]):
        r = run(args.rate, args.seconds, args.customers, store)
        print(f"{store}: {r}")
        rows.append((store, r))
    if args.write:
        write(args, rows)


def write(args: argparse.Namespace, rows: list[tuple[str, dict[str, float]]]) -> None:
    from benchmarks._report import machine, write_section

    table = "\n".join(
        f"| {store} | {r['n']:.0f} | {r['lost']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | "
        f"{r['max']:.1f} | {r['cpu_ms']:.2f} |" for store, r in rows)
    write_section("Delivery: enqueue to webhook receipt (issue #20)", f"""
`python -m benchmarks.bench_delivery --rate {args.rate:.0f} --seconds {args.seconds:.0f} \
--customers {args.customers} --write` on {machine()} (shared with other work while it ran).
Requests are enqueued on the worker's event loop at {args.rate:.0f}/s for {args.customers}
customers (as fired timers hand them over), stored durably in the outbox, sent as signed
POSTs to a receiver in another process (uvicorn, 127.0.0.1), which stamps each arrival.
Latency: arrival minus the moment before `enqueue`, in ms. Target: p99 at most 50 ms.

| outbox | requests | lost | p50 | p99 | max | CPU ms per delivery |
|---|---|---|---|---|---|---|
{table}
""")


if __name__ == "__main__":
    main()
