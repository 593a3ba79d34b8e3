"""``/decide`` for ``agent_routing`` beside the other decision points: in process and over
HTTP (uvicorn), on the same workspace and server.

Builds a workspace as ``bench_serving`` does (``--customers`` synthetic customers in Feast's
SQLite online store, a cold-start ``--policy`` champion per decision point in MLflow).
``agent_routing`` requests carry ``--agents`` agents (the routing simulator's roster with
random loads) and a case (required skill, level, language, ``last_agent_id``), so rules,
the continuity feature and the policy all run over ``--agents`` actions; the other
decision points use their catalogs. Measured:

- in process: ``DecisionService.decide`` (features, rules, continuity, policy, log append),
  per decision point, ``--n`` calls each;
- HTTP, sequential on one keep-alive connection, alternating blocks of the empty endpoint
  and each decision point;
- HTTP, open loop at ``--rate`` requests/s for ``--seconds`` s per decision point, in
  ``--rounds`` rounds rotating the order (the serving target: p99 ≤ 5 ms at 500 req/s on
  uvicorn).

With ``--write`` the "Agent routing" section of BENCHMARKS.md is replaced.

    .venv/bin/python -m benchmarks.bench_agent_routing [--policy vw-cb] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._report import machine, write_section
from benchmarks.bench_serving import build_workspace, free_port, start_server, stop_server
from benchmarks.serving_load import Result, encode, open_loop, sequential

POINTS = ("agent_routing", "default", "cart_abandoned")
CASES = [("billing", 1, "en"), ("technical", 2, "en"), ("sales", 1, "es"),
         ("technical", 2, "fr"), ("billing", 1, "es")]


def routing_bodies(customers: int, agents: int, n: int = 4000) -> list[bytes]:
    from simulator.routing import RoutingConfig, make_roster

    roster = make_roster(RoutingConfig(agents=agents))
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        skill, level, lang = CASES[i % len(CASES)]
        actions = [
            {"id": a.id, "channel": "agent", "features": {
                "skills": ",".join(a.skills), "level": a.level,
                "languages": ",".join(a.languages),
                "load": int(rng.integers(0, a.capacity + 1)), "capacity": a.capacity}}
            for a in roster
        ]
        body = {
            "customer_id": f"c-{(i * 7919) % customers:06d}",
            "decision_point": "agent_routing",
            "context": {"required_skill": skill, "required_level": level, "language": lang,
                        "last_agent_id": roster[i % len(roster)].id},
            "actions": actions,
        }
        out.append(json.dumps(body).encode())
    return out


def other_bodies(point: str, customers: int, n: int = 4000) -> list[bytes]:
    return [
        json.dumps({
            "customer_id": f"c-{(i * 7919) % customers:06d}", "decision_point": point,
            "context": {"page": "checkout", "device": "mobile", "cart_value": 89.5},
        }).encode()
        for i in range(n)
    ]


def all_bodies(args: argparse.Namespace) -> dict[str, list[bytes]]:
    return {p: routing_bodies(args.customers, args.agents) if p == "agent_routing"
            else other_bodies(p, args.customers) for p in POINTS}


def in_process(home: Path, bodies: dict[str, list[bytes]], n: int) -> dict[str, dict]:
    """Per decision point: p50/p95/p99 µs of ``DecisionService.decide``."""
    from serving.factory import build_service
    from serving.schemas import DecideRequest
    from serving.settings import Settings

    service = build_service(Settings(home=home, roll_seconds=3600)).start()
    try:
        out: dict[str, dict] = {}
        for point, raw in bodies.items():
            reqs = [DecideRequest.model_validate_json(b) for b in raw[:n]]
            for r in reqs[:500]:
                service.decide(r)  # warm caches
            lat = np.empty(len(reqs))
            for i, r in enumerate(reqs):
                t = time.perf_counter()
                service.decide(r)
                lat[i] = (time.perf_counter() - t) * 1e6
            probe = json.loads(service.decide(reqs[0]))
            out[point] = {"n": len(reqs), "p50_us": round(float(np.percentile(lat, 50)), 1),
                          "p95_us": round(float(np.percentile(lat, 95)), 1),
                          "p99_us": round(float(np.percentile(lat, 99)), 1),
                          "policy": probe["policy"], "degraded": probe["degraded"]}
        return out
    finally:
        service.close()


async def over_http(port: int, bodies: dict[str, list[bytes]], args: argparse.Namespace
                    ) -> dict[str, Any]:
    host = "127.0.0.1"
    reqs = {p: [encode("/decide", b) for b in raw] for p, raw in bodies.items()}
    reqs["empty"] = [encode("/_empty", b) for b in bodies["default"]]
    for r in reqs.values():
        await sequential(host, port, r[:300])  # warm-up
    parts: dict[str, list[Result]] = {k: [] for k in reqs}
    block = max(100, args.sequential // 10)
    for k in range(0, args.sequential, block):
        for name, r in reqs.items():
            parts[name].append(await sequential(host, port, r[k:k + block]))
    seq = {name: Result(np.concatenate([p.latencies_ms for p in ps]),
                        sum(p.errors for p in ps), sum(p.seconds for p in ps)).row()
           for name, ps in parts.items()}
    # open loop in rounds, rotating the order, so a burst of other load on the machine
    # hits every decision point alike
    rounds: dict[str, list[Result]] = {p: [] for p in POINTS}
    for k in range(args.rounds):
        for p in POINTS[k % len(POINTS):] + POINTS[:k % len(POINTS)]:
            rounds[p].append(await open_loop(host, port, reqs[p], args.rate,
                                             args.seconds / args.rounds))
    opened = {p: Result(np.concatenate([r.latencies_ms for r in rs]), sum(r.errors for r in rs),
                        sum(r.seconds for r in rs)).row() for p, rs in rounds.items()}
    return {"sequential": seq, "open_loop": opened}


def render(res: dict[str, Any], args: argparse.Namespace, command: str) -> str:
    lines = [
        f"Machine: {machine()}. Command: `{command}`.",
        f"Workspace: {args.customers} synthetic customers in Feast (SQLite online store), "
        f"cold-start `{args.policy}` champion per decision point from MLflow, uvicorn engine. "
        f"`agent_routing` requests send {args.agents} agents (the routing simulator's roster, "
        "random loads) and a case with `last_agent_id`; the others use their catalogs "
        "(7-9 actions). Load generator on the same cores as the server.",
        "",
        "In process (`DecisionService.decide`: features, rules, continuity, policy, log "
        "append), µs:",
        "",
        "| decision point | n | p50 µs | p95 µs | p99 µs | policy | degraded |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for p, row in res["in_process"].items():
        lines.append(f"| {p} | {row['n']} | {row['p50_us']} | {row['p95_us']} | "
                     f"{row['p99_us']} | {row['policy']} | {row['degraded']} |")
    lines += ["", "Over HTTP (ms):", "",
              "| load | endpoint | n | achieved req/s | p50 ms | p95 ms | p99 ms | errors |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, row in res["http"]["sequential"].items():
        lines.append(f"| sequential | {name} | {row['n']} | {row['achieved_rps']} | "
                     f"{row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} | {row['errors']} |")
    for name, row in res["http"]["open_loop"].items():
        lines.append(f"| open loop {args.rate}/s | {name} | {row['n']} | {row['achieved_rps']} "
                     f"| {row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} | {row['errors']} |")
    seq, opened = res["http"]["sequential"], res["http"]["open_loop"]
    lines.append("")
    for p in POINTS:
        delta = seq[p]["p50_ms"] - seq["empty"]["p50_ms"]
        ok = opened[p]["p99_ms"] <= 5.0 and opened[p]["achieved_rps"] >= 0.95 * args.rate
        lines.append(
            f"- `{p}`: adds {delta:.3f} ms at p50 over the empty endpoint (sequential; serving "
            f"target ≤ 0.3 ms: {'met' if delta <= 0.3 else 'missed'}); open loop at "
            f"{args.rate} req/s: p99 {opened[p]['p99_ms']} ms (target ≤ 5 ms: "
            f"{'met' if ok else 'missed'}).")
    load = res.get("loadavg")
    if load:
        lines.append(f"- 1-minute load average at the start / end of the run: {load[0]:.2f} / "
                     f"{load[1]:.2f} on {os.cpu_count()} cores (other work shared the machine).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=2000)
    ap.add_argument("--agents", type=int, default=12)
    ap.add_argument("--policy", default="vw-cb")
    ap.add_argument("--n", type=int, default=3000, help="in-process calls per decision point")
    ap.add_argument("--sequential", type=int, default=2000)
    ap.add_argument("--rate", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=10.0,
                    help="open-loop seconds per decision point, split over --rounds")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args(argv)
    os.environ.setdefault("FEAST_USAGE", "False")
    command = " ".join([".venv/bin/python -m benchmarks.bench_agent_routing", *sys.argv[1:]])
    tmp = Path(tempfile.mkdtemp(prefix="maestro-bench-routing-"))
    home = tmp / "home"
    res: dict[str, Any] = {"loadavg": [os.getloadavg()[0]]}
    try:
        build_workspace(home, args.customers, args.policy)
        bodies = all_bodies(args)
        res["in_process"] = in_process(home, bodies, args.n)
        port = free_port()
        proc = start_server("uvicorn", home, port, 1)
        try:
            res["http"] = asyncio.run(over_http(port, bodies, args))
        finally:
            stop_server(proc)
        res["loadavg"].append(os.getloadavg()[0])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = render(res, args, command)
    print(text)
    print(json.dumps(res, indent=1), file=sys.stderr)
    if args.write:
        write_section("Agent routing", text)


if __name__ == "__main__":
    main()
