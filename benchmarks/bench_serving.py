"""Serving latency and throughput: ``/decide`` beside an empty endpoint of the same server,
for both engines (uvicorn in one process; Ray Serve with its HAProxy ingress).

Builds a workspace (Feast repo with ``--customers`` synthetic customers materialised to
SQLite, and a cold-start ``--policy`` champion per decision point in MLflow) under a
temporary directory, starts ``maestro serve --engine E`` as a subprocess for each
engine, and measures, in the same run and against the same server:

- sequential: one keep-alive connection, ``--sequential`` requests per endpoint,
  alternating blocks of the empty endpoint (``POST /_empty``: same app, same middleware,
  no work) and ``POST /decide`` (Feast read, rules, policy, log);
- open loop at each of ``--rates`` requests/s for ``--seconds`` s (latency from the
  moment a request is sent until its answer; time waiting for a free connection counts);
- closed loop with ``--connections`` clients for ``--seconds`` s: the maximum throughput.

The load generator runs on the same 2 cores as the server (and anything else running),
so absolute figures include that contention. With ``--write`` the "Serving" section of
BENCHMARKS.md is replaced.

    .venv/bin/python -m benchmarks.bench_serving [--engines uvicorn,ray] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks._report import machine, write_section
from benchmarks.serving_load import Result, closed_loop, encode, open_loop, sequential

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_workspace(home: Path, customers: int, policy: str) -> None:
    from features.workspace import init_feature_workspace
    from policies.catalog import load_catalog
    from serving.service.policy_store import ensure_cold_start_champions

    init_feature_workspace(home, customers=customers, seed=7)
    ensure_cold_start_champions(load_catalog(), f"sqlite:///{home / 'mlflow.db'}", kind=policy)


def start_server(engine: str, home: Path, port: int, replicas: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "MAESTRO_HOME": str(home),
        "FEAST_USAGE": "False",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    env.pop("MAESTRO_API_KEY", None)
    cmd = [sys.executable, "-m", "cli.main", "serve", "--engine", engine, "--port", str(port)]
    if engine == "ray":
        cmd += ["--replicas", str(replicas)]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{engine} server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{engine} server did not become ready")


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def bodies(customers: int, n: int = 4000) -> list[bytes]:
    points = ["cart_abandoned", "churn_risk", "default", "onboarding", "billing_overdue"]
    out = []
    for i in range(n):
        body = {
            "customer_id": f"c-{(i * 7919) % customers:06d}",
            "decision_point": points[i % len(points)],
            "context": {"page": "checkout", "device": "mobile", "cart_value": 89.5},
        }
        out.append(json.dumps(body).encode())
    return out


async def measure(port: int, args: argparse.Namespace) -> dict[str, Any]:
    host = "127.0.0.1"
    raw = bodies(args.customers)
    decide = [encode("/decide", b) for b in raw]
    empty = [encode("/_empty", b) for b in raw]
    threadpool = [encode("/_decide_threadpool", b) for b in raw]
    on_loop = [encode("/_decide_async", b) for b in raw]
    await sequential(host, port, decide[:500])  # warm-up
    await sequential(host, port, empty[:500])
    out: dict[str, Any] = {"sequential": {}, "open_loop": {}, "max_throughput": {}}
    # alternate blocks so drift in machine load hits both endpoints alike
    block = max(100, args.sequential // 10)
    variants = [
        ("empty", empty),
        ("decide", decide),
        ("decide (async handler)", on_loop),
        ("decide (threadpool handler)", threadpool),
    ]
    seq: dict[str, list] = {name: [] for name, _ in variants}
    for b, k in enumerate(range(0, args.sequential, block)):
        # rotate the order, and give each variant its own customers within a block, so no
        # variant reads rows the previous one has just brought into the caches
        for v, (name, reqs) in enumerate(variants[b % 4 :] + variants[: b % 4]):
            lo = (k + v * 1000) % (len(reqs) - block)
            r = await sequential(host, port, reqs[lo : lo + block])
            seq[name].append(r)
    for name, parts in seq.items():
        merged = Result(
            np.concatenate([p.latencies_ms for p in parts]),
            sum(p.errors for p in parts),
            sum(p.seconds for p in parts),
        )
        out["sequential"][name] = merged.row()
    for rate in args.rates:
        out["open_loop"][str(rate)] = {
            name: (await open_loop(host, port, reqs, rate, args.seconds)).row()
            for name, reqs in (("empty", empty), ("decide", decide))
        }
    out["max_throughput"] = {
        name: (await closed_loop(host, port, reqs, args.seconds, args.connections)).row()
        for name, reqs in (("empty", empty), ("decide", decide))
    }
    return out


def stage_breakdown(home: Path, n: int = 2000) -> dict[str, float]:
    """Mean µs per call of each stage of one decision, in process (no HTTP), on the same
    workspace: where the time of ``/decide`` goes."""
    from features.feast.row_format import entity_key_bytes
    from policies.decision import eligible_actions
    from policies.draw import decide_among
    from policies.types import Context
    from serving.api.fast_decode import decode_decide
    from serving.api.schemas import DecideRequest
    from serving.factory import build_service
    from serving.settings import Settings

    service = build_service(Settings(home=home, roll_seconds=3600)).start()
    try:
        reqs = [DecideRequest.model_validate_json(b) for b in bodies(2000)[:n]]
        raw = bodies(2000)[:n]
        points = {r.decision_point: service.catalog[r.decision_point] for r in reqs}
        feats = {r.customer_id: service.features.get(r.customer_id).values for r in reqs}
        ctxs = [
            Context(r.customer_id, feats[r.customer_id], r.context, r.decision_point, 1.7e9)
            for r in reqs
        ]
        splits = [
            eligible_actions(points[c.decision_point].rules, c, points[c.decision_point].actions)
            for c in ctxs
        ]
        policies = {dp: service.policies.get(dp).policy for dp in points}
        backend = service.features.source.backend

        def timed(fn: Any, items: list[Any]) -> float:
            best = float("inf")
            for _ in range(3):
                t = time.perf_counter()
                for x in items:
                    fn(x)
                best = min(best, (time.perf_counter() - t) / len(items) * 1e6)
            return round(best, 1)

        stages = {
            "request decoding (msgspec, as served)": timed(decode_decide, raw),
            "request validation (the pydantic schema, the fallback)": timed(
                DecideRequest.model_validate_json, raw
            ),
            "feature read (Feast online store, through the row cache)": timed(
                lambda r: service.features.get(r.customer_id), reqs
            ),
            "feature read (Feast SQLite tables, cache bypassed)": timed(
                lambda r: backend._read_store(backend._conn(), entity_key_bytes(r.customer_id), None),
                reqs,
            ),
            "context record": timed(
                lambda r: Context(
                    r.customer_id, feats[r.customer_id], r.context, r.decision_point, 1.7e9
                ),
                reqs,
            ),
            "rules": timed(
                lambda c: eligible_actions(
                    points[c.decision_point].rules, c, points[c.decision_point].actions
                ),
                ctxs,
            ),
            "policy (champion)": timed(
                lambda it: decide_among(
                    policies[it[0].decision_point], it[0], it[1][0], it[1][1], 12345, "e"
                ),
                list(zip(ctxs, splits, strict=True)),
            ),
            "event id (keyed BLAKE2b)": timed(lambda _r: service.signer.issue(2e9), reqs),
            "whole DecisionService.decide (incl. log append)": timed(service.decide, reqs),
        }
        return stages
    finally:
        service.close()


def render(results: dict[str, Any], args: argparse.Namespace, command: str) -> str:
    lines = [
        f"Machine: {machine()}. Command: `{command}`.",
        f"Workspace: {args.customers} synthetic customers in Feast (SQLite online store), "
        f"cold-start `{args.policy}` champion per decision point from MLflow; requests rotate "
        "over five decision points and the customer base. Load generator on the same cores.",
        "",
        "| engine | load | endpoint | n | achieved req/s | p50 ms | p95 ms | p99 ms | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for engine, res in results.items():
        if engine in ("stages", "loadavg"):
            continue

        def add(load: str, name: str, row: dict[str, float], engine: str = engine) -> None:
            lines.append(
                f"| {engine} | {load} | {name} | {row['n']} | {row['achieved_rps']} | "
                f"{row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} | {row['errors']} |"
            )

        for name, row in res["sequential"].items():
            add("sequential", name, row)
        for rate, rows in res["open_loop"].items():
            for name, row in rows.items():
                add(f"open loop {rate}/s", name, row)
        for name, row in res["max_throughput"].items():
            add(f"closed loop, {args.connections} conns", name, row)
    lines.append("")
    for engine, res in results.items():
        if engine in ("stages", "loadavg"):
            continue
        seq = res["sequential"]
        delta = seq["decide"]["p50_ms"] - seq["empty"]["p50_ms"]
        target = 0.3 if engine == "uvicorn" else 0.5
        verdict = "met" if delta <= target else "missed"
        pool = seq.get("decide (threadpool handler)")
        loop_ = seq.get("decide (async handler)", seq["decide"])
        lines.append(
            f"- {engine}: `/decide` adds {delta:.3f} ms at p50 over the empty endpoint "
            f"(sequential; target ≤ {target} ms: {verdict}); max sustained `/decide` "
            f"throughput {res['max_throughput']['decide']['achieved_rps']} req/s (closed loop, "
            f"{args.connections} connections)."
            + (
                f" Sync (threadpool) handler: p50 {pool['p50_ms']} ms; async handler: "
                f"{loop_['p50_ms']} ms."
                if pool
                else ""
            )
        )
        at500 = res["open_loop"].get("500", {}).get("decide")
        if engine == "uvicorn" and at500:
            ok = at500["p99_ms"] <= 5.0 and at500["achieved_rps"] >= 0.95 * 500
            lines.append(
                f"- uvicorn `/decide` at 500 req/s: p99 {at500['p99_ms']} ms, achieved "
                f"{at500['achieved_rps']} req/s (target p99 ≤ 5 ms: {'met' if ok else 'missed'})."
            )
    load = results.get("loadavg")
    if load:
        lines.append(
            f"- 1-minute load average at the start / end of the run: {load[0]:.2f} / "
            f"{load[1]:.2f} on {os.cpu_count()} cores (other work shared the machine)."
        )
    if "stages" in results:
        lines += [
            "",
            "Where the time of one decision goes (in process, mean µs per call, best of 3 passes):",
            "",
            "| stage | µs |",
            "| --- | --- |",
        ]
        lines += [f"| {k} | {v} |" for k, v in results["stages"].items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engines", default="uvicorn,ray")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--policy", default="vw-cb")
    parser.add_argument("--sequential", type=int, default=3000)
    parser.add_argument("--rates", default="200,500,1000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--home", default=None, help="reuse a workspace (default: a temp dir)")
    parser.add_argument("--json", default=None, help="also write the raw results here")
    parser.add_argument("--from-json", default=None, help="only render results saved by --json")
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    parser.add_argument(
        "--no-stages",
        dest="stages",
        action="store_false",
        help="skip the in-process stage breakdown",
    )
    args = parser.parse_args()
    args.rates = [int(r) for r in args.rates.split(",") if r]
    command = "python -m benchmarks.bench_serving " + " ".join(sys.argv[1:])
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        text = render(saved["results"], args, saved["command"])
        print(text)
        if args.write:
            write_section("Serving", text)
        return
    own_home = args.home is None
    home = Path(args.home or tempfile.mkdtemp(prefix="maestro-bench-"))
    try:
        if not (home / "feature_repo").exists():
            print(f"building the workspace in {home} ...", flush=True)
            build_workspace(home, args.customers, args.policy)
        results: dict[str, Any] = {}
        load_start = os.getloadavg()[0]
        if args.stages:
            results["stages"] = stage_breakdown(home)
            print(json.dumps(results["stages"], indent=1), flush=True)
        for engine in [e for e in args.engines.split(",") if e]:
            port = free_port()
            print(f"starting {engine} ...", flush=True)
            proc = start_server(engine, home, port, args.replicas)
            try:
                import uvloop

                results[engine] = uvloop.run(measure(port, args))
            finally:
                stop_server(proc)
            print(json.dumps(results[engine], indent=1), flush=True)
        results["loadavg"] = [load_start, os.getloadavg()[0]]
        text = render(results, args, command)
        print(text)
        if args.json:
            Path(args.json).write_text(
                json.dumps({"command": command, "results": results}, indent=1)
            )
        if args.write:
            write_section("Serving", text)
    finally:
        if own_home:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
