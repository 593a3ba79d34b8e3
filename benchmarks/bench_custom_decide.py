"""``/decide`` on uvicorn with 40 custom features added, beside the 65-feature schema.

Two workspaces built the same way (``--customers`` synthetic customers in SQLite, a
cold-start ``--policy`` champion per decision point): the plain one (the 65 built-in
features) and one whose ``features.yaml`` adds the 40-feature view ``customer_bench`` of
:mod:`benchmarks.bench_feature_load`, loaded and materialised for every customer. Both
servers (``maestro serve --engine uvicorn``) run at once and are measured in alternating
blocks of sequential requests on one keep-alive connection each, so drift in the shared
machine's load hits both alike; the same request bodies go to both.

    .venv/bin/python -m benchmarks.bench_custom_decide [--customers 10000]
        [--requests 6000] [--write]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._report import machine, write_section
from benchmarks.bench_feature_load import declaration, export
from benchmarks.bench_serving import (
    bodies,
    build_workspace,
    free_port,
    start_server,
    stop_server,
)
from benchmarks.serving_load import Result, encode, sequential

os.environ.setdefault("FEAST_USAGE", "False")


def add_custom_features(home: Path, customers: int) -> None:
    """``features.yaml`` with the 40 custom features, applied, loaded, materialised."""
    from features.apply import apply_workspace
    from features.declared import load_declaration
    from features.materialize import materialize_sources
    from features.staging import load_source

    (home / "features.yaml").write_text(declaration())
    export(home / "exports" / "bench.parquet", customers)
    apply_workspace(home)
    decl = load_declaration(home / "features.yaml", home)
    report = load_source(home, decl, "bench", None)
    print(report.lines()[0], flush=True)
    for count in materialize_sources(home, decl):
        print(count.line(), flush=True)


async def measure(ports: dict[str, int], raw: list[bytes], n: int) -> dict[str, Any]:
    """Alternating blocks of ``/decide`` to each server; latency percentiles per server."""
    reqs = [encode("/decide", b) for b in raw]
    for port in ports.values():
        await sequential("127.0.0.1", port, reqs[:500])  # warm-up
    parts: dict[str, list[Result]] = {name: [] for name in ports}
    block = 200
    names = list(ports)
    for b, k in enumerate(range(0, n, block)):
        lo = (k % (len(reqs) - block))
        for name in names[b % 2:] + names[: b % 2]:
            parts[name].append(await sequential("127.0.0.1", ports[name], reqs[lo:lo + block]))
    out = {}
    for name, results in parts.items():
        lat = np.concatenate([r.latencies_ms for r in results])
        out[name] = {
            "n": int(lat.size),
            "errors": sum(r.errors for r in results),
            **{f"p{q}_ms": round(float(np.percentile(lat, q)), 3) for q in (50, 95, 99)},
        }
    return out


def cpu_per_decide(homes: dict[str, Path], n: int) -> dict[str, dict[str, float]]:
    """CPU time (``time.thread_time``: not the time spent waiting for a core) of
    ``DecisionService.decide`` per call, in process, both services built in this process
    and called in alternating blocks of 200 on the same requests; per block the mean, and
    the median and quartiles of the blocks are reported."""
    import time

    from serving.api.schemas import DecideRequest
    from serving.factory import build_service
    from serving.settings import Settings

    services = {
        name: build_service(Settings(home=home, roll_seconds=3600)).start()
        for name, home in homes.items()
    }
    try:
        reqs = [DecideRequest.model_validate_json(b) for b in bodies(2000)]
        for service in services.values():  # warm-up: caches, prepared statements
            for r in reqs[:400]:
                service.decide(r)
        blocks: dict[str, list[float]] = {name: [] for name in services}
        names = list(services)
        for b, k in enumerate(range(0, n, 200)):
            chunk = reqs[k % 1800 : k % 1800 + 200]
            for name in names[b % 2 :] + names[: b % 2]:
                start = time.thread_time()
                for r in chunk:
                    services[name].decide(r)
                blocks[name].append((time.thread_time() - start) / len(chunk) * 1e6)
        return {
            name: dict(zip(("q1", "median", "q3"), np.percentile(v, [25, 50, 75]).round(1),
                           strict=True))
            for name, v in blocks.items()
        }
    finally:
        for service in services.values():
            service.close()


def render_cpu(cpu: dict[str, dict[str, float]], n: int) -> str:
    rows = ["| schema | CPU µs per decide, median of blocks | quartiles |", "|---|---:|---:|"]
    for name, c in cpu.items():
        rows.append(f"| {name} | {c['median']:.1f} | {c['q1']:.1f}-{c['q3']:.1f} |")
    delta = cpu["65 + 40 custom"]["median"] - cpu["65 features"]["median"]
    return (
        f"In process, {n:,} `DecisionService.decide` calls each (no HTTP), CPU time per call "
        "(`time.thread_time`, so waiting for a core does not count), alternating blocks "
        "of 200:\n\n" + "\n".join(rows) + f"\n\nCPU difference: {delta:+.1f} µs per decide."
    )


def render(results: dict[str, Any], args: argparse.Namespace, load: list[float]) -> str:
    rows = [
        "| schema | requests | errors | p50 | p95 | p99 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        rows.append(
            f"| {name} | {r['n']:,} | {r['errors']} | {r['p50_ms']:.3f} ms | "
            f"{r['p95_ms']:.3f} ms | {r['p99_ms']:.3f} ms |"
        )
    base, more = results["65 features"], results["65 + 40 custom"]
    delta = more["p50_ms"] - base["p50_ms"]
    return (
        f"Machine: {machine()}, shared with other work (1-minute load average {load[0]:.1f} "
        f"at the start, {load[1]:.1f} at the end). Command: `python -m "
        f"benchmarks.bench_custom_decide --customers {args.customers} --requests "
        f"{args.requests}`; uvicorn, {args.policy} cold-start champions, sequential "
        "requests on one keep-alive connection per server, both servers up at once and "
        "measured in alternating blocks of 200.\n\n"
        + "\n".join(rows)
        + f"\n\np50 difference: {delta:+.3f} ms (target: within +0.05 ms)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=6_000)
    parser.add_argument("--policy", default="vw-cb")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="maestro-custom-decide-"))
    procs = []
    try:
        homes = {"65 features": root / "plain", "65 + 40 custom": root / "custom"}
        for name, home in homes.items():
            print(f"building {name} in {home} ...", flush=True)
            build_workspace(home, args.customers, args.policy)
        add_custom_features(homes["65 + 40 custom"], args.customers)
        cpu = cpu_per_decide(homes, args.requests)
        print(render_cpu(cpu, args.requests), flush=True)
        ports = {}
        for name, home in homes.items():
            ports[name] = free_port()
            procs.append(start_server("uvicorn", home, ports[name], 1))
        import uvloop

        load = [os.getloadavg()[0]]
        results = uvloop.run(measure(ports, bodies(args.customers), args.requests))
        load.append(os.getloadavg()[0])
        text = render(results, args, load) + "\n\n" + render_cpu(cpu, args.requests)
        print(text)
        if args.write:
            write_section("/decide with 40 custom features (uvicorn)", text)
    finally:
        for proc in procs:
            stop_server(proc)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
