"""``DecisionService.decide`` in process, counted three ways, for comparing two trees.

Builds (once, with the tree under test) a workspace like :mod:`benchmarks.bench_serving`'s:
``--customers`` synthetic customers in Feast's SQLite online store and a cold-start
``--policy`` champion per decision point in MLflow. Each run copies it to a temporary
directory (a fresh event log; the log roll and registry polling made rare), starts the
service, parses ``--n`` bench requests once and decides them all once to warm up. Then:

- ``calls``: Python calls (and C calls) per decide, counted with ``sys.setprofile`` over
  one pass: independent of machine load (the rules read the clock, so the count moves
  a little with the hour: compare trees run one after the other);
- ``instr``: instructions of the deciding thread per decide, counted by
  ``valgrind --tool=callgrind`` over one pass (the script runs itself under valgrind; a
  tiny marker library built with ``cc`` switches the counting on and off around the
  pass; ``--keep DIR`` keeps callgrind's files for ``callgrind_annotate``): independent
  of machine load; the group commit thread's work is not counted;
- ``cpu``: the decide thread's CPU µs per decide, best of ``--passes`` passes (run it
  pinned, e.g. under ``taskset -c 1``): depends on what else the machine runs.

The script imports nothing from ``benchmarks`` and only modules found in the trees before
and after the decision path's restructuring, so one file measures either tree: run it by
path with the tree under test on ``PYTHONPATH``.

    PYTHONPATH=TREE python path/to/bench_service.py --home W [--mode calls,cpu,instr]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MARKER_C = r"""
#include <valgrind/callgrind.h>
void marker_on(void) { CALLGRIND_START_INSTRUMENTATION; CALLGRIND_ZERO_STATS; }
void marker_off(void) { CALLGRIND_DUMP_STATS_AT("decide"); CALLGRIND_STOP_INSTRUMENTATION; }
"""


def _first(modules: tuple[str, ...], name: str) -> Any:
    """``name`` from the first of ``modules`` this tree has (they moved between trees)."""
    for module in modules:
        try:
            return getattr(importlib.import_module(module), name)
        except ModuleNotFoundError:
            continue
    raise ImportError(f"no {name} in this tree")


def build_workspace(home: Path, customers: int, policy: str) -> None:
    """bench_serving's workspace: Feast repo with SQLite online store, cold-start champions."""
    from features.workspace import init_feature_workspace
    from policies.catalog import load_catalog

    modules = ("serving.service.policy_store", "serving.policy_store")
    ensure = _first(modules, "ensure_cold_start_champions")
    init_feature_workspace(home, customers=customers, seed=7)
    ensure(load_catalog(), f"sqlite:///{home / 'mlflow.db'}", kind=policy)


def bodies(customers: int, n: int) -> list[bytes]:
    """bench_serving's ``/decide`` bodies: five decision points, customers spread out."""
    points = ["cart_abandoned", "churn_risk", "default", "onboarding", "billing_overdue"]
    context = {"page": "checkout", "device": "mobile", "cart_value": 89.5}
    return [
        json.dumps(
            {
                "customer_id": f"c-{(i * 7919) % customers:06d}",
                "decision_point": points[i % len(points)],
                "context": context,
            }
        ).encode()
        for i in range(n)
    ]


def start_service(home: Path, work: Path) -> Any:
    """A started service over a copy of the workspace ``home`` (its own event log)."""
    from serving.factory import build_service
    from serving.settings import Settings

    for name in ("feature_repo", "mlflow.db", "mlruns", "mlartifacts", "secret"):
        src = home / name
        if src.is_dir():
            shutil.copytree(src, work / name)
        elif src.exists():
            shutil.copy2(src, work / name)
    settings = Settings(
        home=work,
        roll_seconds=1e6,
        poll_seconds=10,
        time_budget_ms=1e6,
        feature_cache_seconds=1e6,
    )
    return build_service(settings).start()


def one_pass(decide: Any, requests: list[Any]) -> None:
    for req in requests:
        decide(req)


def count_calls(decide: Any, requests: list[Any]) -> dict[str, float]:
    counts = {"call": 0, "c_call": 0}

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event in counts:
            counts[event] += 1

    sys.setprofile(profile)
    try:
        one_pass(decide, requests)
    finally:
        sys.setprofile(None)
    n = len(requests)
    return {"py_calls": counts["call"] / n, "c_calls": counts["c_call"] / n}


def cpu_us(decide: Any, requests: list[Any], passes: int) -> dict[str, float]:
    best_thread = best_wall = float("inf")
    for _ in range(passes):
        gc.collect()
        t0, w0 = time.thread_time_ns(), time.perf_counter_ns()
        one_pass(decide, requests)
        best_thread = min(best_thread, time.thread_time_ns() - t0)
        best_wall = min(best_wall, time.perf_counter_ns() - w0)
    n = len(requests)
    return {"cpu_us": best_thread / n / 1000.0, "wall_us": best_wall / n / 1000.0}


def marker_library(directory: Path) -> ctypes.CDLL:
    src = directory / "marker.c"
    src.write_text(MARKER_C)
    lib = directory / "marker.so"
    subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    return ctypes.CDLL(str(lib))


def measure_inside(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Set up, warm up, then the measurements of ``args.mode`` (run in this process)."""
    service = start_service(Path(args.home), work)
    try:
        request_type = _first(("serving.api.schemas", "serving.schemas"), "DecideRequest")
        requests = [request_type.model_validate_json(b) for b in bodies(args.customers, args.n)]
        decide = service.decide
        one_pass(decide, requests)  # warm-up: feature cache, memos, adaptive bytecode
        out: dict[str, Any] = {"n": args.n, "python": sys.executable}
        modes = args.mode.split(",")
        if "calls" in modes:
            out.update(count_calls(decide, requests))
        if "cpu" in modes:
            out.update(cpu_us(decide, requests, args.passes))
        if "inside-callgrind" in modes:
            marker = marker_library(work)
            marker.marker_on()
            one_pass(decide, requests)
            marker.marker_off()
        degraded = sum(v for k, v in _degraded(service).items())
        out["degraded"] = degraded
        return out
    finally:
        service.close()


def _degraded(service: Any) -> dict[str, float]:
    totals: dict[str, float] = {}
    for metric in service.metrics.degraded.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                totals[str(sample.labels)] = sample.value
    return totals


def run_callgrind(args: argparse.Namespace, work: Path) -> dict[str, float]:
    """Instructions per decide: this script again under callgrind, counting one pass."""
    out_dir = Path(args.keep) if args.keep else work / "callgrind"
    out_dir.mkdir(parents=True)  # a new directory: every dump in it is this run's
    cmd = [
        "valgrind", "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes",
        f"--callgrind-out-file={out_dir}/cg.%p", sys.executable, str(Path(__file__).resolve()),
        "--home", args.home, "--customers", str(args.customers),
        "--n", str(args.n), "--mode", "inside-callgrind",
    ]  # fmt: skip
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    main_thread = 0
    for dump in out_dir.iterdir():
        text = dump.read_text(errors="replace")
        if "Trigger: Client Request: decide" not in text:
            continue
        ir = next(int(line.split()[1]) for line in text.splitlines()
                  if line.startswith("summary:"))  # fmt: skip
        if dump.name.endswith("-01"):
            main_thread = ir
    return {"instr": main_thread / args.n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", required=True, help="workspace (built here if missing)")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--policy", default="vw-cb")
    parser.add_argument("--n", type=int, default=2000, help="bench requests per pass")
    parser.add_argument("--passes", type=int, default=8, help="cpu: best of this many")
    parser.add_argument("--mode", default="calls,cpu", help="calls, cpu and/or instr")
    parser.add_argument("--keep", default=None, help="instr: keep callgrind's files here")
    args = parser.parse_args()
    modes = set(args.mode.split(","))
    for key in ("FEAST_USAGE", "RAY_USAGE_STATS_ENABLED"):
        os.environ.setdefault(key, "False" if key == "FEAST_USAGE" else "0")
    home = Path(args.home)
    if "build" in modes:
        build_workspace(home, args.customers, args.policy)
        return
    if not (home / "feature_repo" / "feature_store.yaml").exists():
        # in a process of its own: what building leaves behind would change the counts
        cmd = [sys.executable, str(Path(__file__).resolve()), "--home", args.home,
               "--customers", str(args.customers), "--policy", args.policy, "--mode", "build"]
        subprocess.run(cmd, check=True)  # fmt: skip
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench_service_") as tmp:
        if modes - {"instr"}:
            (Path(tmp) / "in").mkdir()
            result.update(measure_inside(args, Path(tmp) / "in"))
        if "instr" in modes:
            (Path(tmp) / "cg").mkdir()
            result.update(run_callgrind(args, Path(tmp) / "cg"))
    if modes == {"inside-callgrind"}:
        return
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v
                      for k, v in result.items()}))  # fmt: skip


if __name__ == "__main__":
    main()
