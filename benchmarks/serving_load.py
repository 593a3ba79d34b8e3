"""A small HTTP/1.1 load generator for the serving benchmarks (asyncio + uvloop, raw
keep-alive sockets, pre-encoded requests): sequential, open-loop at a fixed rate, and
closed-loop for the maximum throughput."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def encode(path: str, body: bytes, host: str = "127.0.0.1") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Conn:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        i = lower.find(b"content-length:")
        if i >= 0:
            n = int(lower[i + 15 : lower.find(b"\r\n", i)])
            await self.reader.readexactly(n)
        elif b"transfer-encoding: chunked" in lower:
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        return status

    def close(self) -> None:
        self.writer.close()


_DROPPED = (asyncio.IncompleteReadError, ConnectionError)


async def send(conn: Conn, raw: bytes, host: str, port: int) -> tuple[int, Conn]:
    """One request; a connection the server dropped counts as an error (status 0) and is
    replaced by a fresh one."""
    try:
        return await conn.request(raw), conn
    except _DROPPED:
        conn.close()
        return 0, await Conn.open(host, port)


@dataclass
class Result:
    latencies_ms: np.ndarray
    errors: int
    seconds: float
    target_rate: float | None = None

    @property
    def n(self) -> int:
        return len(self.latencies_ms)

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.n else float("nan")

    @property
    def rate(self) -> float:
        return self.n / self.seconds if self.seconds else 0.0

    def row(self) -> dict[str, float]:
        return {
            "n": self.n,
            "errors": self.errors,
            "achieved_rps": round(self.rate, 1),
            "p50_ms": round(self.pct(50), 3),
            "p95_ms": round(self.pct(95), 3),
            "p99_ms": round(self.pct(99), 3),
        }


async def sequential(host: str, port: int, requests: Sequence[bytes]) -> Result:
    conn = await Conn.open(host, port)
    lat = np.empty(len(requests))
    errors = 0
    clock = time.perf_counter
    t0 = clock()
    for i, raw in enumerate(requests):
        start = clock()
        status, conn = await send(conn, raw, host, port)
        if status != 200:
            errors += 1
        lat[i] = (clock() - start) * 1000.0
    seconds = clock() - t0
    conn.close()
    return Result(lat, errors, seconds)


async def open_loop(
    host: str,
    port: int,
    requests: Sequence[bytes],
    rate: float,
    seconds: float,
    connections: int = 64,
) -> Result:
    """Send at ``rate`` requests/s whatever the server does (open loop); each latency runs
    from the moment the request was due to go out until its answer, so time waiting for
    a free connection (server falling behind) counts."""
    clock = time.perf_counter  # uvloop's loop.time() has 1 ms resolution
    pool: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await Conn.open(host, port))
    n = int(rate * seconds)
    lat: list[float] = []
    errors = 0

    async def one(raw: bytes, due: float) -> None:
        nonlocal errors
        conn = await pool.get()
        try:
            status, conn = await send(conn, raw, host, port)
            if status != 200:
                errors += 1
        finally:
            pool.put_nowait(conn)
        lat.append((clock() - due) * 1000.0)

    tasks = []
    start = clock() + 0.05
    for i in range(n):
        due = start + i / rate
        delay = due - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(requests[i % len(requests)], max(due, clock()))))
    await asyncio.gather(*tasks)
    elapsed = clock() - start
    while not pool.empty():
        pool.get_nowait().close()
    return Result(np.asarray(lat), errors, elapsed, rate)


async def closed_loop(
    host: str, port: int, requests: Sequence[bytes], seconds: float, connections: int = 16
) -> Result:
    """``connections`` clients each sending as fast as answers come back."""
    clock = time.perf_counter
    lat: list[float] = []
    errors = 0
    stop_at = clock() + seconds

    async def client(k: int) -> None:
        nonlocal errors
        conn = await Conn.open(host, port)
        i = k
        while clock() < stop_at:
            t = clock()
            status, conn = await send(conn, requests[i % len(requests)], host, port)
            if status != 200:
                errors += 1
            lat.append((clock() - t) * 1000.0)
            i += connections
        conn.close()

    t0 = clock()
    await asyncio.gather(*(client(k) for k in range(connections)))
    return Result(np.asarray(lat), errors, clock() - t0)
