"""Feature store: one customer's full read (SQLite and Redis), event ingestion and the
time until an event is visible to another process (:mod:`benchmarks.feature_ingest`).

Builds its own workspace (``--customers``, default 10,000) under a temporary directory,
materialised once into SQLite and once into a redis-server it starts on 127.0.0.1.
With ``--write`` replaces the "Feature store" section of BENCHMARKS.md.

    .venv/bin/python -m benchmarks.bench_features [--quick] [--stores sqlite,redis] [--write]

``--quick`` (2,000 customers, 3,000 reads, 4 s per ingestion run) takes about a minute;
the default about two and a half on an idle 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._report import machine, write_section
from benchmarks.feature_ingest import bench_ingest, pct

os.environ.setdefault("FEAST_USAGE", "False")


def bench_reads(source: Any, customers: int, n: int, rng: random.Random) -> dict[str, float]:
    ids = [f"c-{rng.randrange(customers):06d}" for _ in range(n)]
    for cid in ids[:500]:
        source.get(cid)
    from features.errors import FeatureStoreUnavailable

    samples = []
    errors = 0
    clock = time.perf_counter
    for cid in ids:
        t = clock()
        try:
            source.get(cid)
        except FeatureStoreUnavailable:  # past the read timeout: counted, and timed
            errors += 1
        samples.append(clock() - t)
    return {**pct(samples), "errors": errors}


def bench_sdk(source: Any, customers: int, n: int, rng: random.Random) -> dict[str, float]:
    store = source.store
    service = store.get_feature_service("policy_inputs_v1")
    samples = []
    for _ in range(n):
        cid = f"c-{rng.randrange(customers):06d}"
        t = time.perf_counter()
        store.get_online_features(features=service, entity_rows=[{"customer_id": cid}])
        samples.append(time.perf_counter() - t)
    return pct(samples[n // 10 :])


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is missing: make test-deps")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def fmt(stats: dict[str, float]) -> str:
    return " | ".join(f"{stats[k]:.3f}" for k in ("p50", "p95", "p99", "mean"))


def _ms(stats: dict[str, float], keys: tuple[str, ...] = ("p50", "p95", "p99")) -> str:
    return " / ".join(f"{stats[k]:.1f}" for k in keys)


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--reads", type=int, default=10_000, help="reads per store")
    parser.add_argument("--seconds", type=float, default=8.0, help="per ingestion run")
    parser.add_argument(
        "--quick", action="store_true", help="2,000 customers, 3,000 reads, 4 s per ingestion run"
    )
    parser.add_argument("--stores", default="sqlite,redis", help="comma-separated")
    parser.add_argument(
        "--flush-interval", type=float, default=0.01, help="EventWriter flush interval, seconds"
    )
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    if args.quick:
        args.customers, args.reads, args.seconds = 2_000, 3_000, 4.0
    stores = [s.strip().lower() for s in args.stores.split(",") if s.strip()]
    if not stores or set(stores) - {"sqlite", "redis"}:
        parser.error("--stores takes sqlite and/or redis")
    from features.feast.source import FeastFeatureSource
    from features.workspace import init_feature_workspace

    rng = random.Random(7)
    tmp = Path(tempfile.mkdtemp(prefix="maestro-bench-features-"))
    redis_proc = None
    load_before = _load()
    inits: dict[str, float] = {}
    reads: dict[str, dict[str, float]] = {}
    ingest: dict[tuple[str, str], dict[str, Any]] = {}
    try:
        repos = {}
        for store in stores:
            online = None
            if store == "redis":
                redis_proc, port = start_redis(tmp)
                online = f"redis://127.0.0.1:{port}"
            t = time.perf_counter()
            init_feature_workspace(
                tmp / store, customers=args.customers, seed=7, online_store=online
            )
            inits[store] = time.perf_counter() - t
            repos[store] = tmp / store / "feature_repo"
        for store in stores:
            label = "SQLite" if store == "sqlite" else "Redis"
            src = FeastFeatureSource(repos[store])
            reads[f"{label}, FeastFeatureSource.get"] = bench_reads(
                src, args.customers, args.reads, rng
            )
            reads[f"{label}, Feast SDK get_online_features"] = bench_sdk(
                src, args.customers, 500, rng
            )
            src.close()
        for store in stores:
            label = "SQLite" if store == "sqlite" else "Redis"
            for pace, rate in (("flat out", None), ("2,000/s", 2000.0)):
                ingest[(label, pace)] = bench_ingest(
                    repos[store], args.customers, args.seconds, rate, rng, args.flush_interval
                )
                ingest[(label, pace)]["load"] = _load()
                print(
                    label,
                    pace,
                    f"{ingest[(label, pace)]['events_per_s']:,.0f} events/s",
                    flush=True,
                )
    finally:
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(5)
        shutil.rmtree(tmp, ignore_errors=True)
    body = report(args, stores, load_before, inits, reads, ingest)
    print(body)
    if args.write:
        write_section("Feature store", body)


def report(
    args: argparse.Namespace,
    stores: list[str],
    load_before: str,
    inits: dict[str, float],
    reads: dict[str, dict[str, float]],
    ingest: dict[tuple[str, str], dict[str, Any]],
) -> str:
    options = (
        ["--quick"]
        if args.quick
        else [
            f"--customers {args.customers}",
            f"--reads {args.reads}",
            f"--seconds {args.seconds:g}",
        ]
    )
    if stores != ["sqlite", "redis"]:
        options.append(f"--stores {','.join(stores)}")
    if args.flush_interval != 0.01:
        options.append(f"--flush-interval {args.flush_interval:g}")
    command = f".venv/bin/python -m benchmarks.bench_features {' '.join(options)} --write"
    lines = [
        f"Machine: {machine()}. Command: `{command}`. Load average (1/5/15 min) at the start "
        f"{load_before}, at the end {_load()} (the machine is shared: other engineers' "
        "tests run alongside, so tails are the machine's as much as the code's).",
        f"`maestro init` features part ({args.customers:,} customers, apply + materialise): "
        + ", ".join(
            f"{t:.1f} s into {'SQLite' if s == 'sqlite' else 'Redis'}" for s, t in inits.items()
        )
        + " (includes importing Feast once).",
        "",
        f"One customer's full read (every feature, 6 views; random customers; {args.reads:,} "
        "reads), ms:",
        "",
        "| store, reader | p50 | p95 | p99 | mean | reads over the 100 ms timeout |",
        "| --- | --- | --- | --- | --- | --- |",
        *[
            f"| {name} | {fmt(stats)} | {stats.get('errors', '-')} |"
            for name, stats in reads.items()
        ],
        "",
        f"Event ingestion, one process, the event mix of `benchmarks/feature_ingest.py` for "
        f"{args.seconds:g} s, flush interval {args.flush_interval * 1e3:g} ms. Visibility: from "
        "`ingest` returning to a second *process* (its own `FeastFeatureSource`) reading the "
        "probe's value, one probe every 10 ms; split into wait (until the flush that wrote it "
        "started), write (that flush's duration) and seen (flush end to the other process's "
        "read). Consent: `ingest` of `consent_changed`, written through before it returns. "
        "CPU: the ingesting process's CPU time (ingest and writer threads) per event:",
        "",
        "| store | pace | events/s | visibility p50 / p95 / p99 / max ms | wait p50 / p99 | "
        "write p50 / p99 | seen p50 / p99 | probes (unseen) | flushes (rows each) | "
        "consent ingest p50 / p99 ms | CPU µs / event | failed | load after |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (store, pace), r in ingest.items():
        split = r["split"]
        lines.append(
            f"| {store} | {pace} | {r['events_per_s']:,.0f} | "
            f"{_ms(r['visibility'], ('p50', 'p95', 'p99', 'max'))} | "
            f"{_ms(split['wait'], ('p50', 'p99'))} | {_ms(split['write'], ('p50', 'p99'))} | "
            f"{_ms(split['seen'], ('p50', 'p99'))} | {r['probes']} ({r['probes_unseen']}) | "
            f"{r['flushes']} ({r['rows_per_flush']:.0f}) | "
            f"{_ms(r['consent_ingest'], ('p50', 'p99'))} | {r['cpu_us_per_event']:.0f} | "
            f"{r['failed']} | {r['load']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
