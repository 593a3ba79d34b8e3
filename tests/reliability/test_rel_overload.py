"""Item 7, overload: ``maestro serve --engine ray`` (one replica, bounded queue) is first
measured at its sustainable rate (closed loop), then offered five times that rate (open
loop) for several seconds. Rejections must be ``503`` with ``Retry-After``, the accepted
requests' p99 must stay near the sustainable p99, and the memory of the whole process
tree must stay bounded. Slow (one Ray cluster start); run with ``-m slow``.

On a 2-core machine the load generator shares the cores with Ray, so the offered rate is
what the generator achieved (recorded as a figure), which may fall short of 5×.
"""

from __future__ import annotations

import asyncio
import contextlib
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
import psutil
import pytest

pytestmark = [pytest.mark.ray, pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
KEY = "overload-key"
BODY = {"customer_id": "c-000003", "decision_point": "default"}


def _tree_rss_mb(pid: int) -> float:
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    # the cluster's daemons run in the same session (start_new_session)
    for p in psutil.process_iter(["pid"]):
        try:
            if os.getsid(p.pid) == pid and p not in procs:
                total += p.memory_info().rss
        except (psutil.Error, OSError):
            pass
    return total / 1e6


async def _closed_loop(base: str, seconds: float, concurrency: int) -> tuple[float, list[float]]:
    headers = {"Authorization": f"Bearer {KEY}"}
    lat: list[float] = []
    end = time.perf_counter() + seconds
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as c:

        async def worker() -> None:
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                r = await c.post("/decide", json=BODY)
                if r.status_code == 200:
                    lat.append(time.perf_counter() - t0)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(lat) / (time.perf_counter() - start), lat


async def _open_loop(base: str, rate: float, seconds: float) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {KEY}"}
    limits = httpx.Limits(max_connections=2000, max_keepalive_connections=500)
    results: list[tuple[int, float, str | None]] = []
    errors = 0
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30,
                                 limits=limits) as c:

        async def one() -> None:
            nonlocal errors
            t0 = time.perf_counter()
            try:
                r = await c.post("/decide", json=BODY)
                results.append((r.status_code, time.perf_counter() - t0,
                                r.headers.get("retry-after")))
            except httpx.HTTPError:
                errors += 1

        tasks = []
        start = time.perf_counter()
        sent = 0
        while (now := time.perf_counter()) - start < seconds:
            due = int((now - start) * rate)
            while sent < due:
                tasks.append(asyncio.create_task(one()))
                sent += 1
            await asyncio.sleep(0.001)
        offered = sent / (time.perf_counter() - start)
        await asyncio.gather(*tasks)
    return {"results": results, "errors": errors, "offered_rate": offered}


@pytest.mark.xfail(
    strict=True,
    reason="measured 2026-11-23: behind Ray Serve's HAProxy ingress the excess queues "
    "(4x offered: 0 rejections, accepted p99 106 s) instead of being shed with 503; "
    "see RELIABILITY.md, item 7",
)
def test_overload_at_5x_sustainable_rate(tmp_path: Path, rel_server: Any, figure: Any) -> None:
    from maestro_serving_conftest import free_port  # type: ignore[import-not-found]

    port = free_port()
    ray_dir = tempfile.mkdtemp(prefix="mo-")
    env = {
        **os.environ,
        "MAESTRO_HOME": str(tmp_path / "home"),
        "MAESTRO_FEATURE_SOURCE": "memory",
        "MLFLOW_TRACKING_URI": rel_server.settings.tracking_uri,
        "MAESTRO_API_KEY": KEY,
        "MAESTRO_RAY_MAX_ONGOING_REQUESTS": "8",
        "MAESTRO_RAY_MAX_QUEUED_REQUESTS": "16",
        "MAESTRO_RAY_TEMP_DIR": ray_dir,
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "serving.cli", "serve", "--engine", "ray", "--replicas", "1",
         "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, "ray serve exited"
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.5)
        asyncio.run(_closed_loop(base, 3.0, 4))  # warm-up
        rate, base_lat = asyncio.run(_closed_loop(base, 8.0, 4))
        base_p99 = float(np.percentile(base_lat, 99))
        rss_before = _tree_rss_mb(proc.pid)
        over = asyncio.run(_open_loop(base, 5 * rate, 10.0))
        rss_after = _tree_rss_mb(proc.pid)
        codes: dict[int, int] = {}
        for status, _, _ in over["results"]:
            codes[status] = codes.get(status, 0) + 1
        accepted = [t for s, t, _ in over["results"] if s == 200]
        rejected = [ra for s, _, ra in over["results"] if s == 503]
        out = {
            "sustainable_rate_rps": round(rate, 1),
            "sustainable_p99_ms": round(base_p99 * 1000, 1),
            "offered_rate_rps": round(over["offered_rate"], 1),
            "offered_multiple": round(over["offered_rate"] / rate, 2),
            "statuses": codes,
            "client_errors": over["errors"],
            "accepted_p99_ms": round(float(np.percentile(accepted, 99)) * 1000, 1),
            "rejected_with_retry_after": sum(1 for ra in rejected if ra),
            "rss_mb_before": round(rss_before, 1),
            "rss_mb_after": round(rss_after, 1),
        }
        figure("overload.ray", out)
        assert set(codes) <= {200, 503}, codes
        assert over["errors"] == 0
        assert rejected and all(ra == "1" for ra in rejected)
        assert out["rss_mb_after"] - out["rss_mb_before"] < 300  # bounded queue, bounded memory
        # accepted requests wait at most a bounded queue (8 in flight + 16 queued)
        assert out["accepted_p99_ms"] < max(10 * out["sustainable_p99_ms"], 250.0), out
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(ray_dir, ignore_errors=True)
