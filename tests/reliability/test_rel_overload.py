"""Item 7, overload: ``maestro serve`` (uvicorn, and Ray Serve with the HAProxy ingress)
is first measured at its sustainable rate (closed loop), then offered five times that
rate (open loop). Rejections must be ``503`` with ``Retry-After`` and the contract's
JSON error, the accepted requests' p99 must stay within a stated bound, the server must
keep answering (goodput), and the memory of the whole process tree must stay bounded.
Shedding is :mod:`serving.api.admission` on uvicorn; on Ray Serve it is HAProxy, in front of
the replicas (:mod:`serving.engines.haproxy_shed`: per-replica ``maxconn``, ``timeout queue`` of
the same budget, the same ``503``), with the same middleware behind it in each replica.

The server runs pinned to one core (``taskset -c 1``) and the load generator to the
other, so the generator can offer 5x: it is a small asyncio HTTP/1.1 client over raw
sockets (keep-alive pool, one request per connection at a time), since httpx's own
overhead would cap the offered rate on this 2-core machine. Latency is measured from
the moment the generator starts a request (``accepted_p99_ms``; it includes waiting for
a pooled connection) and, as a figure, from the moment it was due
(``accepted_p99_from_due_ms``, which adds the generator's own lag). The uvicorn test is
small and in the default suite; the Ray Serve test is ``slow`` (one local cluster).

Bound on accepted latency: with a queue budget ``B`` an accepted request waits at most
about one batch in the kernel (≤ ``B`` plus the cheap refusals of that batch) and ``B``
in the event loop, so the test asserts accepted p99 ≤ sustainable p99 + 4·B (+ the
generator's worst stall, which on a shared machine delays reading answers too). On Ray
Serve an accepted request waits at most ``B`` in HAProxy's queue and then behind at most
``maxconn - 1`` requests in the replica: the same bound holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import psutil
import pytest
import uvloop

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
KEY = "overload-key"
CHANNELS = ("email", "push", "sms", "in_app", "whatsapp", "call_center")
#: a decision over a 100-action menu (the contract's maximum), each action with features:
#: a few milliseconds of work, so that five times the sustainable rate is within reach of
#: a one-core load generator
BODY = orjson.dumps(
    {
        "customer_id": "c-000003",
        "decision_point": "default",
        "context": {f"k{i}": i * 1.5 for i in range(16)},
        "actions": [
            {
                "id": f"a{i:03d}",
                "channel": CHANNELS[i % 6],
                "features": {f"f{j}": (i * j) % 11 + 0.5 for j in range(8)},
            }
            for i in range(100)
        ],
    }
)
QUEUE_MS = 25.0
SERVER_CORE, CLIENT_CORE = 1, 0


def _tree_rss_mb(pid: int) -> float:
    """RSS of the server and everything it started (Ray: the session's daemons too)."""
    try:
        root = psutil.Process(pid)
        procs = {root, *root.children(recursive=True)}
    except psutil.Error:
        return 0.0
    for p in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error, OSError):
            if os.getsid(p.pid) == pid:
                procs.add(p)
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total / 1e6


class _Client:
    """A minimal HTTP/1.1 client: a fixed pool of keep-alive connections opened up front
    (a request waits for a free one, as with any pooled client), ``POST /decide``."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self.request = (
            b"POST /decide HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Authorization: Bearer {KEY}\r\n".encode()
            + b"Content-Type: application/json\r\n"
            + f"Content-Length: {len(BODY)}\r\n\r\n".encode()
            + BODY
        )

    async def start(self, connections: int) -> None:
        for _ in range(connections):
            self.pool.put_nowait(await asyncio.open_connection("127.0.0.1", self.port))

    async def post(self) -> tuple[int, dict[bytes, bytes], bytes]:
        reader, writer = await self.pool.get()
        try:
            writer.write(self.request)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            status = int(lines[0].split()[1])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name:
                    headers[name.strip().lower()] = value.strip()
            if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
                body = b""
                while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
                    body += (await reader.readexactly(size + 2))[:-2]
                await reader.readuntil(b"\r\n")
            else:
                body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            writer.close()
            self.pool.put_nowait(await asyncio.open_connection("127.0.0.1", self.port))
            raise ConnectionError("connection failed") from None
        if headers.get(b"connection", b"").lower() == b"close":
            writer.close()
            self.pool.put_nowait(await asyncio.open_connection("127.0.0.1", self.port))
        else:
            self.pool.put_nowait((reader, writer))
        return status, headers, body

    def close(self) -> None:
        while not self.pool.empty():
            self.pool.get_nowait()[1].close()


async def _closed_loop(port: int, seconds: float, concurrency: int) -> tuple[float, list[float]]:
    client = _Client(port)
    await client.start(concurrency)
    lat: list[float] = []
    end = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            status, _, _ = await client.post()
            if status == 200:
                lat.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    rate = len(lat) / (time.perf_counter() - start)
    client.close()
    return rate, lat


async def _open_loop(
    port: int, rate: float, seconds: float, rss: Any, connections: int = 256
) -> dict[str, Any]:
    client = _Client(port)
    await client.start(connections)
    series: list[float] = []

    async def sample() -> None:  # the server's memory, once a second, during the overload
        while True:
            series.append(round(await asyncio.to_thread(rss), 1))
            await asyncio.sleep(1.0)

    sampler = asyncio.create_task(sample())
    results: list[tuple[int, float, float, bytes | None, bytes]] = []
    errors = 0

    async def one(due: float) -> None:
        nonlocal errors
        started = time.perf_counter()
        try:
            status, headers, body = await client.post()
        except ConnectionError:
            errors += 1
            return
        done = time.perf_counter()
        results.append((status, done - due, done - started, headers.get(b"retry-after"), body))

    tasks = []
    start = time.perf_counter()
    total = int(seconds * rate)  # every request due in the window is sent, late or not:
    sent = 0  # a stall of the generator (answers arriving) shows as lag and a lower
    lag = 0.0  # offered rate, instead of requests silently not sent at the end
    while True:
        now = time.perf_counter()
        due = min(int((now - start) * rate), total)
        while sent < due:
            when = start + sent / rate
            lag = max(lag, now - when)
            tasks.append(asyncio.create_task(one(when)))
            sent += 1
        if sent >= total:
            break
        await asyncio.sleep(0.0005)
    offered = sent / max(now - start, seconds)
    sampler.cancel()
    await asyncio.gather(*tasks)
    client.close()
    return {
        "results": results,
        "errors": errors,
        "offered": offered,
        "max_lag": lag,
        "rss_series": series,
    }


def _run_client(coro: Any) -> Any:
    """Run the generator on its own core (the server has the other), without the cyclic
    garbage collector: late in the full suite the test process's heap is large, and one
    full collection stalled the generator for ~0.54 s in the middle of the overload."""
    before = os.sched_getaffinity(0)
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {CLIENT_CORE})
    gc.collect()
    gc.disable()
    try:
        return uvloop.run(coro)
    finally:
        gc.enable()
        os.sched_setaffinity(0, before)


def _serve(engine: str, tmp_path: Path, tracking_uri: str, extra: dict[str, str]) -> Any:
    from live_servers import free_port  # type: ignore[import-not-found]

    port = free_port()
    env = {
        **os.environ,
        "MAESTRO_HOME": str(tmp_path / "home"),
        "MAESTRO_FEATURE_SOURCE": "memory",
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MAESTRO_API_KEY": KEY,
        "MAESTRO_ADMISSION_QUEUE_MS": str(QUEUE_MS),
        "RAY_USAGE_STATS_ENABLED": "0",
        **extra,
    }
    env.pop("MAESTRO_KILL_SWITCH", None)
    pin = ["taskset", "-c", str(SERVER_CORE)] if shutil.which("taskset") else []
    cmd = [*pin, sys.executable, "-m", "cli.main", "serve", "--engine", engine]
    if engine == "ray":
        cmd += ["--replicas", "1"]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while True:
        assert proc.poll() is None, f"{engine} server exited"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        assert time.monotonic() < deadline
        time.sleep(0.3)
    return proc, port


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def _overload(
    proc: subprocess.Popen,
    port: int,
    warm: float,
    measure: float,
    over: float,
    recover: float = 1.0,
) -> dict[str, Any]:
    _run_client(_closed_loop(port, warm, 4))
    rate, base_lat = _run_client(_closed_loop(port, measure, 4))
    base_p99 = float(np.percentile(base_lat, 99))
    rss_before = _tree_rss_mb(proc.pid)
    res = _run_client(_open_loop(port, 5 * rate, over, lambda: _tree_rss_mb(proc.pid)))
    rss_after = _tree_rss_mb(proc.pid)
    # it recovers: once the overload stops, requests are answered again
    after_rate, after_lat = _run_client(_closed_loop(port, recover, 4))
    codes: dict[int, int] = {}
    for status, *_ in res["results"]:
        codes[status] = codes.get(status, 0) + 1
    accepted = [t for s, _, t, _, _ in res["results"] if s == 200]
    accepted_due = [t for s, t, _, _, _ in res["results"] if s == 200]
    rejected = [(ra, body) for s, _, _, ra, body in res["results"] if s == 503]
    return {
        "sustainable_rate_rps": round(rate, 1),
        "sustainable_p99_ms": round(base_p99 * 1000, 2),
        "offered_rate_rps": round(res["offered"], 1),
        "offered_multiple": round(res["offered"] / rate, 2),
        "generator_max_lag_ms": round(res["max_lag"] * 1000, 1),
        "statuses": codes,
        "client_errors": res["errors"],
        "accepted_rps": round(len(accepted) / over, 1),
        "accepted_p50_ms": round(float(np.percentile(accepted, 50)) * 1000, 2),
        "accepted_p99_ms": round(float(np.percentile(accepted, 99)) * 1000, 2),
        "accepted_max_ms": round(max(accepted) * 1000, 1),
        "accepted_p99_from_due_ms": round(float(np.percentile(accepted_due, 99)) * 1000, 2),
        "rejected_with_retry_after": sum(1 for ra, _ in rejected if ra),
        "rejected_with_json_error": sum(
            1 for _, b in rejected if b"OverloadedError" in b or b"detail" in b
        ),
        "queue_budget_ms": QUEUE_MS,
        "rss_mb_before": round(rss_before, 1),
        "rss_mb_after": round(rss_after, 1),
        "rss_mb_each_second": res["rss_series"],
        "recovered_rps": round(after_rate, 1),
        "recovered_p99_ms": round(float(np.percentile(after_lat, 99)) * 1000, 2),
        "loadavg": open("/proc/loadavg").read().split()[:3],
        "_rejected": rejected,
    }


def _assert_shed(out: dict[str, Any], rss_growth_mb: float) -> None:
    rejected = out["_rejected"]
    assert set(out["statuses"]) <= {200, 503}, out
    assert out["client_errors"] == 0, out
    assert out["offered_multiple"] >= 4.5, out  # the generator did offer ~5x
    assert rejected, out  # overload was shed ...
    assert all(ra is not None and int(ra) >= 1 for ra, _ in rejected), out  # ... with Retry-After
    assert all(orjson.loads(b)["detail"][0]["type"] for _, b in rejected), out  # JSON error
    # accepted requests keep their latency: sustainable p99 + 4 queue budgets (plus the
    # generator's own worst stall on this shared machine: it delays reading answers too)
    bound = out["sustainable_p99_ms"] + 4 * QUEUE_MS + out["generator_max_lag_ms"]
    out["accepted_p99_bound_ms"] = round(bound, 1)
    assert out["accepted_p99_ms"] <= bound, out
    # goodput: refusals are cheap but not free (each is parsed and answered), so the
    # server keeps serving a good share of its sustainable rate, not collapsing to 0
    assert out["accepted_rps"] >= 0.2 * out["sustainable_rate_rps"], out
    peak = max([out["rss_mb_after"], *out["rss_mb_each_second"]])
    assert peak - out["rss_mb_before"] < rss_growth_mb, out
    # and it levels off: the second half grows little (100 MB: a leak of ~40 KB a request
    # at this rate; tighter bounds failed on a machine at load 11 from allocator noise)
    series = out["rss_mb_each_second"]
    assert series[-1] - series[len(series) // 2] < 100, out
    assert out["recovered_rps"] > 0.5 * out["sustainable_rate_rps"], out


def test_overload_at_5x_sustainable_rate_uvicorn(
    tmp_path: Path, rel_server: Any, figure: Any
) -> None:
    proc, port = _serve("uvicorn", tmp_path, rel_server.settings.tracking_uri, {})
    try:
        out = _overload(proc, port, warm=1.0, measure=3.0, over=5.0)
        try:
            _assert_shed(out, rss_growth_mb=200)
        finally:
            figure("overload.uvicorn", {k: v for k, v in out.items() if k != "_rejected"})
    finally:
        _stop(proc)


def _app_rejections(port: int) -> float:
    """Refusals counted by the replicas' own admission middleware (``/metrics``); the
    rest of the 503s were HAProxy's."""
    text = httpx.get(
        f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {KEY}"}
    ).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("maestro_admission_rejected_total")
    )


@pytest.mark.ray
@pytest.mark.slow
def test_overload_at_5x_sustainable_rate(tmp_path: Path, rel_server: Any, figure: Any) -> None:
    """Ray Serve (HAProxy ingress, one replica): HAProxy sheds (serving/engines/haproxy_shed.py)."""
    ray_dir = tempfile.mkdtemp(prefix="mo-")
    proc, port = _serve(
        "ray", tmp_path, rel_server.settings.tracking_uri, {"MAESTRO_RAY_TEMP_DIR": ray_dir}
    )
    try:
        # recovery over 3 s: one second of a one-core replica on a shared machine is noise
        # (one run at load 4 measured 126 req/s after against 288 before; a diagnostic
        # run: 139, 99, 119 req/s in three successive seconds after the overload, the
        # replica getting 23-29 % of its core, the rest taken by other work)
        out = _overload(proc, port, warm=3.0, measure=8.0, over=10.0, recover=3.0)
        out["rejected_by_replica_app"] = _app_rejections(port)
        try:
            _assert_shed(out, rss_growth_mb=300)
        finally:
            figure("overload.ray", {k: v for k, v in out.items() if k != "_rejected"})
    finally:
        _stop(proc)
        shutil.rmtree(ray_dir, ignore_errors=True)
