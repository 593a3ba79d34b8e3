"""Declared sources at scale: ``maestro load`` and ``maestro materialize`` of N customers ×
40 custom features from one Parquet export, into the SQLite online store and into a
redis-server the benchmark starts on 127.0.0.1.

Each case (customers, store) runs in a process of its own (its peak RSS is its own): a
workspace under a temporary directory (``maestro init`` with 50 synthetic customers), a
``features.yaml`` adding the view ``customer_bench`` (25 float, 10 int, 3 bool mapped from
``"Y"/"N"``, 2 string features) fed by the Parquet source ``bench`` (the customer master),
``maestro apply``; then the timed steps, called as the commands call them:
:func:`features.staging.load_source` (read, check every row, stage) and
:func:`features.materialize.materialize_sources` (the staged rows → the online store), the
latter in a fresh process of its own, so its peak RSS is its own too.

    .venv/bin/python -m benchmarks.bench_feature_load [--customers 200000,1000000]
        [--stores sqlite,redis] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._report import machine, write_section

os.environ.setdefault("FEAST_USAGE", "False")

FLOATS, INTS, BOOLS, STRINGS = 25, 10, 3, 2


def declaration() -> str:
    """The packaged default plus the 40-feature view and its Parquet source."""
    from features.declared import DEFAULT_FILE

    feats = [(f"f{i:02d}", "float", "0.0", f"c{i:02d}") for i in range(FLOATS)]
    feats += [(f"n{i:02d}", "int", "0", f"k{i:02d}") for i in range(INTS)]
    feats += [(f"b{i:02d}", "bool", "false", f"y{i:02d}") for i in range(BOOLS)]
    feats += [(f"s{i:02d}", "string", "none", f"t{i:02d}") for i in range(STRINGS)]
    lines = "".join(
        f"  - {{name: {n}, type: {t}, default: {d}, view: customer_bench}}\n"
        for n, t, d, _ in feats
    )
    columns = "".join(
        f"      {n}: {{column: {c}"
        + (', values: {"Y": true, "N": false}' if t == "bool" else "")
        + "}\n"
        for n, t, _, c in feats
    )
    text = DEFAULT_FILE.read_text().replace(
        "features:\n", "  customer_bench: {ttl: 30d, source: bench}\nfeatures:\n", 1
    )
    return (
        text
        + lines
        + "sources:\n  bench:\n    kind: parquet\n    path: exports/bench.parquet\n"
        + "    entity_key: cust\n    event_time: as_of\n    defines_customers: true\n"
        + "    columns:\n"
        + columns
    )


def export(path: Path, n: int, seed: int = 1) -> None:
    """``n`` customers' rows: ``cust, as_of`` and the 40 source columns."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {
        "cust": [f"c-{i:06d}" for i in range(n)],
        "as_of": pd.Timestamp("2026-01-01", tz="UTC")
        + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s"),
    }
    for i in range(FLOATS):
        data[f"c{i:02d}"] = rng.normal(0, 100, n).round(3)
    for i in range(INTS):
        data[f"k{i:02d}"] = rng.integers(0, 1_000, n)
    for i in range(BOOLS):
        data[f"y{i:02d}"] = np.where(rng.random(n) < 0.5, "Y", "N")
    for i in range(STRINGS):
        data[f"t{i:02d}"] = np.array(["gold", "silver", "bronze", "none"])[rng.integers(0, 4, n)]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(data).to_parquet(path, index=False)


def run_case(n: int, store: str, workdir: Path) -> dict[str, Any]:
    """One case, in this process: build the workspace, then time load and materialize."""
    from features.apply import apply_workspace
    from features.declared import load_declaration
    from features.staging import load_source
    from features.workspace import init_feature_workspace

    home = workdir / "home"
    online = "sqlite"
    redis = None
    if store == "redis":
        from benchmarks.bench_features import start_redis

        redis, port = start_redis(workdir)
        online = f"redis://127.0.0.1:{port}"
    try:
        init_feature_workspace(home, customers=50, seed=1, online_store=online)
        (home / "features.yaml").write_text(declaration())
        started = time.perf_counter()
        export(home / "exports" / "bench.parquet", n)
        written = time.perf_counter() - started
        apply_workspace(home)
        decl = load_declaration(home / "features.yaml", home)
        started = time.perf_counter()
        report = load_source(home, decl, "bench", None)
        load_s = time.perf_counter() - started
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_feature_load", "--materialize", str(home)],
            capture_output=True,
            text=True,
            check=True,
        )
        return {
            "customers": n,
            "store": store,
            "export_s": round(written, 1),
            "load_s": round(load_s, 1),
            "staged": report.lines()[0],
            "load_peak_rss_mb": round(rss),
            **json.loads(done.stdout.strip().splitlines()[-1]),
            "load_avg": round(os.getloadavg()[0], 1),
        }
    finally:
        if redis is not None:
            redis.terminate()
            redis.wait(timeout=10)


def run_materialize(home: Path) -> dict[str, Any]:
    """``materialize_sources`` of the workspace at ``home``, timed, in this (fresh) process:
    its wall and CPU time and its own peak RSS."""
    from features.declared import load_declaration
    from features.materialize import materialize_sources

    decl = load_declaration(home / "features.yaml", home)
    started, cpu = time.perf_counter(), time.process_time()
    (count,) = [c for c in materialize_sources(home, decl) if c.source == "bench"]
    return {
        "materialize_s": round(time.perf_counter() - started, 1),
        "materialize_cpu_s": round(time.process_time() - cpu, 1),
        "moved": count.line(),
        "materialize_peak_rss_mb": _own_peak_rss_mb(),
    }


def _own_peak_rss_mb() -> int:
    """This process image's peak RSS (``VmHWM``: unlike ``ru_maxrss``, not carried over
    from the parent across fork and exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _table(results: list[dict[str, Any]], load: str) -> str:
    rows = [
        "| customers × 40 features | online store | `maestro load` | rows/s | "
        "`maestro materialize` (CPU) | rows/s | peak RSS load / materialize | "
        "load avg at end |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        n = r["customers"]
        rows.append(
            f"| {n:,} | {r['store']} | {r['load_s']:.1f} s | {n / r['load_s']:,.0f} | "
            f"{r['materialize_s']:.1f} s ({r['materialize_cpu_s']:.1f} s) | "
            f"{n / r['materialize_s']:,.0f} | "
            f"{r['load_peak_rss_mb']:,} / {r['materialize_peak_rss_mb']:,} MB | "
            f"{r['load_avg']} |"
        )
    return (
        f"Machine: {machine()}, shared with other work (1-minute load average {load} at the "
        "start; 2 cores). Command: `python -m benchmarks.bench_feature_load "
        "--customers ... --stores ... --write`; each case in a process of its own.\n\n"
        + "\n".join(rows)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", default="200000,1000000")
    parser.add_argument("--stores", default="sqlite,redis")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--case", nargs=2, metavar=("N", "STORE"), help=argparse.SUPPRESS)
    parser.add_argument("--materialize", metavar="HOME", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.materialize:
        print(json.dumps(run_materialize(Path(args.materialize))))
        return
    if args.case:
        with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
            print(json.dumps(run_case(int(args.case[0]), args.case[1], Path(tmp))))
        return
    load = round(os.getloadavg()[0], 1)
    results = []
    for n in (int(x) for x in args.customers.split(",")):
        for store in args.stores.split(","):
            done = subprocess.run(
                [sys.executable, "-m", "benchmarks.bench_feature_load", "--case", str(n), store],
                capture_output=True,
                text=True,
                check=True,
            )
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), flush=True)
    body = _table(results, load)
    print(body)
    if args.write:
        write_section("Declared sources at scale: load and materialize", body)


if __name__ == "__main__":
    main()
