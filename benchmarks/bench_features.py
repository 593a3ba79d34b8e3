"""Feature store: one customer's full read (SQLite and Redis), event ingestion and the
time until an event is visible to another reader.

Builds its own workspace (``--customers``, default 10,000) under a temporary directory,
materialised once into SQLite and once into a redis-server it starts on 127.0.0.1.
With ``--write`` replaces the "Feature store" section of BENCHMARKS.md.

    .venv/bin/python -m benchmarks.bench_features [--customers 10000] [--reads 20000] [--write]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._report import machine, write_section

os.environ.setdefault("FEAST_USAGE", "False")


def pct(samples: list[float]) -> dict[str, float]:
    a = np.asarray(samples) * 1e3
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "p99": float(np.percentile(a, 99)), "mean": float(a.mean())}


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
    return pct(samples[n // 10:])


EVENT_MIX = [
    ("page_view", lambda r: {"page": r.choice(["home", "product", "cart", "checkout"])}, 0.6),
    ("cart_updated", lambda r: {"cart_value": round(r.uniform(5, 300), 2)}, 0.15),
    ("message_opened", lambda r: {"channel": r.choice(["email", "push", "sms"])}, 0.1),
    ("message_clicked", lambda r: {"channel": r.choice(["email", "push"])}, 0.05),
    ("purchase", lambda r: {}, 0.04),
    ("complaint_opened", lambda r: {}, 0.02),
    ("invoice_overdue", lambda r: {"days_overdue": r.randrange(1, 60)}, 0.02),
    ("consent_changed", lambda r: {"channel": "sms", "granted": r.random() < 0.5}, 0.02),
]


def random_event(rng: random.Random, customers: int) -> dict[str, Any]:
    x, acc = rng.random(), 0.0
    chosen = EVENT_MIX[-1]
    for entry in EVENT_MIX:
        acc += entry[2]
        if x <= acc:
            chosen = entry
            break
    return {"customer_id": f"c-{rng.randrange(customers):06d}", "type": chosen[0],
            "properties": chosen[1](rng)}


def bench_ingest(repo: Path, customers: int, seconds: float, rate: float | None,
                 rng: random.Random) -> dict[str, Any]:
    """Ingest the event mix for ``seconds`` (paced at ``rate``/s, or flat out), while a
    second, independent source polls probe events until it sees them (visibility)."""
    from features.errors import FeatureStoreUnavailable
    from features.event_writer import EventWriter
    from features.feast_source import FeastFeatureSource

    source = FeastFeatureSource(repo)
    other = FeastFeatureSource(repo)
    writer = EventWriter(source)  # default flush interval (25 ms)
    probes: list[tuple[str, str, float]] = []
    seen: list[float] = []
    lock = threading.Lock()
    stop = threading.Event()

    def watch() -> None:
        """Polls the oldest unseen probe every 2 ms (probes become visible in order, as
        the writer writes in order; one read per poll keeps the watcher's CPU small)."""
        while not stop.is_set() or probes:
            with lock:
                head = probes[0] if probes else None
            if head is not None:
                cid, page, t0 = head
                try:
                    visible = other.get(cid).values["last_page"] == page
                except FeatureStoreUnavailable:
                    visible = False
                if visible:
                    seen.append(time.perf_counter() - t0)
                    with lock:
                        probes.pop(0)
                    continue
                if time.perf_counter() - t0 > 5.0:  # never visible: counted as unseen
                    with lock:
                        probes.pop(0)
                    unseen[0] += 1
                    continue
            time.sleep(0.002)
            if stop.is_set() and time.perf_counter() - stop_time[0] > 5:
                break

    stop_time = [0.0]
    unseen = [0]
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    consent_latency: list[float] = []
    n = failed = 0
    started = time.perf_counter()
    next_probe = started
    while (now := time.perf_counter()) - started < seconds:
        if rate is not None:
            due = started + n / rate
            if now < due:
                time.sleep(due - now)
        event = random_event(rng, customers)
        if time.perf_counter() >= next_probe:  # a probe every 20 ms
            next_probe += 0.02
            page = f"probe-{n}"  # its own customer: no other event overwrites the page
            event = {"customer_id": f"probe-{n}", "type": "page_view",
                     "properties": {"page": page}}
            try:
                writer.ingest(event)
            except FeatureStoreUnavailable:
                failed += 1
            else:
                with lock:
                    probes.append((event["customer_id"], page, time.perf_counter()))
        else:
            t = time.perf_counter()
            try:
                writer.ingest(event)
            except FeatureStoreUnavailable:  # a store read past its timeout
                failed += 1
            if event["type"] == "consent_changed":
                consent_latency.append(time.perf_counter() - t)
        n += 1
    elapsed = time.perf_counter() - started
    backlog = len(source.overlay)
    t = time.perf_counter()
    writer.close()
    drain = time.perf_counter() - t
    stop_time[0] = time.perf_counter()
    stop.set()
    watcher.join(10)
    lost = len(probes) + unseen[0]
    source.close()
    other.close()
    return {
        "events": n, "failed": failed, "seconds": elapsed, "events_per_s": n / elapsed,
        "pushed_rows": writer.pushed_rows, "backlog_at_end": backlog, "drain_s": drain,
        "visibility": pct(seen) if seen else {}, "probes": len(seen), "probes_unseen": lost,
        "consent_ingest": pct(consent_latency) if consent_latency else {},
    }


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is missing: make test-deps")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def fmt(stats: dict[str, float]) -> str:
    return " | ".join(f"{stats[k]:.3f}" for k in ("p50", "p95", "p99", "mean"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    from features.feast_source import FeastFeatureSource
    from features.workspace import init_feature_workspace

    rng = random.Random(7)
    tmp = Path(tempfile.mkdtemp(prefix="maestro-bench-features-"))
    redis_proc, port = start_redis(tmp)
    load_before = os.getloadavg()
    try:
        t = time.perf_counter()
        init_feature_workspace(tmp / "sqlite", customers=args.customers, seed=7)
        init_sqlite = time.perf_counter() - t
        t = time.perf_counter()
        init_feature_workspace(tmp / "redis", customers=args.customers, seed=7,
                               online_store=f"redis://127.0.0.1:{port}")
        init_redis = time.perf_counter() - t
        sqlite_src = FeastFeatureSource(tmp / "sqlite" / "feature_repo")
        redis_src = FeastFeatureSource(tmp / "redis" / "feature_repo")
        reads = {
            "SQLite, FeastFeatureSource.get": bench_reads(sqlite_src, args.customers, args.reads, rng),
            "Redis, FeastFeatureSource.get": bench_reads(redis_src, args.customers, args.reads, rng),
            "SQLite, Feast SDK get_online_features": bench_sdk(sqlite_src, args.customers, 500, rng),
            "Redis, Feast SDK get_online_features": bench_sdk(redis_src, args.customers, 500, rng),
        }
        sqlite_src.close()
        redis_src.close()
        ingest = {
            ("SQLite", "flat out"): bench_ingest(tmp / "sqlite" / "feature_repo", args.customers,
                                                 args.seconds, None, rng),
            ("SQLite", "2,000/s"): bench_ingest(tmp / "sqlite" / "feature_repo", args.customers,
                                                args.seconds, 2000.0, rng),
            ("Redis", "flat out"): bench_ingest(tmp / "redis" / "feature_repo", args.customers,
                                                args.seconds, None, rng),
            ("Redis", "2,000/s"): bench_ingest(tmp / "redis" / "feature_repo", args.customers,
                                               args.seconds, 2000.0, rng),
        }
        load_after = os.getloadavg()
    finally:
        redis_proc.terminate()
        redis_proc.wait(5)
        shutil.rmtree(tmp, ignore_errors=True)

    lines = [
        f"Machine: {machine()}. Command: `.venv/bin/python -m benchmarks.bench_features "
        f"--customers {args.customers} --reads {args.reads} --seconds {args.seconds:g}"
        f"{' --write' if args.write else ''}`. Load average (1/5/15 min) at the start "
        f"{'/'.join(f'{x:.1f}' for x in load_before)}, at the end "
        f"{'/'.join(f'{x:.1f}' for x in load_after)} (the machine is shared: other "
        "engineers' tests run alongside, so tails are the machine's as much as the code's).",
        f"`maestro init` features part ({args.customers:,} customers, apply + materialise): "
        f"{init_sqlite:.1f} s into SQLite, {init_redis:.1f} s into Redis (includes importing "
        "Feast once).",
        "",
        f"One customer's full read (65 features, 6 views; random customers; {args.reads:,} reads), ms:",
        "",
        "| store, reader | p50 | p95 | p99 | mean | reads over the 100 ms timeout |",
        "| --- | --- | --- | --- | --- | --- |",
        *[f"| {name} | {fmt(stats)} | {stats.get('errors', '-')} |"
          for name, stats in reads.items()],
        "",
        f"Event ingestion, one process, the event mix of the script for {args.seconds:g} s "
        "(flush every 25 ms); visibility = from `ingest` returning to an independent "
        "source (another process's view of the store) reading the probe's value, one probe "
        "every 20 ms; consent = `ingest` of `consent_changed` (written through to the store "
        "before it returns, so visible everywhere when it returns):",
        "",
        "| store | pace | events/s | visibility p50 / p95 / p99 ms | probes seen | "
        "backlog at end | consent ingest p50 / p99 ms | events failed (timeout) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (store, pace), r in ingest.items():
        vis = r["visibility"]
        con = r["consent_ingest"]
        lines.append(
            f"| {store} | {pace} | {r['events_per_s']:,.0f} | "
            f"{vis.get('p50', float('nan')):.1f} / {vis.get('p95', float('nan')):.1f} / "
            f"{vis.get('p99', float('nan')):.1f} | {r['probes']} (unseen {r['probes_unseen']}) | "
            f"{r['backlog_at_end']} rows | "
            f"{con.get('p50', float('nan')):.1f} / {con.get('p99', float('nan')):.1f} | "
            f"{r['failed']} |")
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_section("Feature store", body)


if __name__ == "__main__":
    main()
