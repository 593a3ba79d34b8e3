"""``/decide`` and ``/reward`` through uvicorn, embedded state against networked state, with
the round trips each call makes to Redis and PostgreSQL counted on the servers.

Three workspaces, each served by ``maestro serve --engine uvicorn`` as a subprocess:

- ``embedded``: today's defaults (Feast's SQLite online store, SQLite shared state and
  contact store under ``$MAESTRO_HOME``);
- ``postgres``: the replicas' shared state on PostgreSQL (``MAESTRO_STATE_URL``: reward
  claims, request-id answers, tombstones, assignments), the rest embedded;
- ``contacts``: the same plus contact history and budgets on Redis
  (``MAESTRO_CONTACT_STORE=redis``);
- ``networked``: the same plus Feast's Redis online store: every state a replica on
  another node must see is on a server.

Per workspace, on one keep-alive connection (sequential, so p50 is the cost of one call):
``/decide`` without and with a ``request_id``, then ``/reward`` for decisions made before
(untimed). Round trips are counted by the servers: PostgreSQL's committed and rolled-back
transactions of the state database (``pg_stat_database``; the state runs in autocommit, so
each statement is one transaction and one round trip) and Redis' ``total_reads_processed`` (one read event per
request the server receives on an open connection: a pipeline or a Lua script is one,
where ``total_commands_processed`` would count every command inside a script), each minus
what the idle server did over as long (background polls).

A redis-server and a PostgreSQL are started on 127.0.0.1 by the tests' support code (the
same as the cluster tests use), or named by ``MAESTRO_STATE_URL`` and ``BENCH_REDIS_URL``.

    .venv/bin/python -m benchmarks.bench_cluster_state [-n 2000] [--customers 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks._report import machine
from benchmarks.bench_serving import free_port, stop_server
from benchmarks.serving_load import encode, sequential

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ("embedded", "postgres", "contacts", "networked")


def _env(config: str, home: Path, redis_url: str, state_url: str) -> dict[str, str]:
    env = {**os.environ, "MAESTRO_HOME": str(home), "FEAST_USAGE": "False",
           "MLFLOW_ENABLE_TELEMETRY": "false", "DO_NOT_TRACK": "1",
           "MAESTRO_ROLL_SECONDS": "3600"}
    for name in ("MAESTRO_API_KEY", "MAESTRO_STATE_URL", "MAESTRO_ONLINE_STORE"):
        env.pop(name, None)
    if config != "embedded":
        env["MAESTRO_STATE_URL"] = state_url
    if config in ("contacts", "networked"):
        env.update({"MAESTRO_CONTACT_STORE": "redis", "MAESTRO_CONTACT_REDIS_URL": f"{redis_url}/1"})
    if config == "networked":
        env["MAESTRO_ONLINE_STORE"] = redis_url
    return env


def _start(env: dict[str, str], customers: int) -> tuple[subprocess.Popen, int]:
    init = subprocess.run([sys.executable, "-m", "cli.main", "init", "--customers",
                           str(customers)], cwd=ROOT, env=env, capture_output=True, text=True)
    if init.returncode != 0:
        raise RuntimeError(init.stderr[-2000:])
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--engine", "uvicorn", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_server(proc)
    raise TimeoutError("server did not become ready")


class Counters:
    """Round trips seen by the servers: PostgreSQL transactions of the state database and
    Redis commands, read before and after a batch."""

    def __init__(self, redis_url: str, state_url: str) -> None:
        import redis

        self.redis = redis.Redis.from_url(redis_url)
        self.state_url = state_url

    def read(self) -> tuple[int, int]:
        import psycopg

        with psycopg.connect(self.state_url, autocommit=True) as conn:
            (xacts,) = conn.execute(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database"
                " WHERE datname = current_database()"
            ).fetchone()
        reads = int(self.redis.info("stats")["total_reads_processed"])
        # this reading's own work: one transaction here, the INFO request there
        return int(xacts) - 1, reads - 1


#: PostgreSQL backends publish their transaction counts at most once a second when busy
#: and within 10 s when idle (``pg_stat_database`` lags): settle before each reading
PG_STATS_SETTLE_S = 11.0


def _per_call(counters: Counters, run: Callable[[], float], n: int) -> tuple[float, float]:
    """(PostgreSQL, Redis) round trips per call of a batch of ``n`` calls, less what the
    idle servers did in as long (background work, at the rate measured right after).
    ``run`` returns how long the batch took."""
    time.sleep(PG_STATS_SETTLE_S)
    before = counters.read()
    seconds = run()
    time.sleep(PG_STATS_SETTLE_S)
    after = counters.read()
    time.sleep(PG_STATS_SETTLE_S)
    idle = counters.read()
    busy = [a - b for a, b in zip(after, before, strict=True)]
    rate = [(i - a) / PG_STATS_SETTLE_S for i, a in zip(idle, after, strict=True)]
    window = seconds + PG_STATS_SETTLE_S
    return tuple(max(0.0, (b - r * window) / n) for b, r in zip(busy, rate, strict=True))  # type: ignore[return-value]


def _bodies(customers: int, n: int, request_ids: bool) -> list[bytes]:
    tag = os.urandom(3).hex()
    out = []
    for i in range(n):
        body: dict[str, Any] = {"customer_id": f"c-{(i * 7919) % customers:06d}",
                                "decision_point": "cart_abandoned",
                                "context": {"page": "checkout", "device": "mobile"}}
        if request_ids:
            body["request_id"] = f"{tag}-{i}"
        out.append(json.dumps(body).encode())
    return out


def _decided(client: httpx.Client, body: bytes) -> str:
    """The event id of a decision, asked again while the loaded server sheds (``503``)."""
    for _ in range(100):
        answer = client.post("/decide", content=body)
        if answer.status_code == 200:
            return str(answer.json()["event_id"])
        time.sleep(0.05)
    raise RuntimeError(f"/decide kept answering {answer.status_code}: {answer.text[:200]}")


def _requests(port: int, customers: int, n: int) -> dict[str, list[bytes]]:
    """``n`` requests of each call for the server on ``port``: plain decisions, decisions
    with a fresh request id, and rewards for decisions made now (untimed)."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        events = [_decided(client, b) for b in _bodies(customers, n, False)]
    return {
        "decide": [encode("/decide", b) for b in _bodies(customers, n, False)],
        "decide + request_id": [encode("/decide", b) for b in _bodies(customers, n, True)],
        "reward": [encode("/reward", json.dumps({"event_id": e, "reward": 1.0}).encode())
                   for e in events],
    }


def round_trips(port: int, counters: Counters, customers: int, n: int) -> dict[str, Any]:
    """(PostgreSQL, Redis) round trips per call of each kind, the other servers idle."""
    out = {}
    for call, requests in _requests(port, customers, n).items():
        def run(requests: list[bytes] = requests) -> float:
            return asyncio.run(sequential("127.0.0.1", port, requests)).seconds

        pg, rd = _per_call(counters, run, n)
        out[call] = {"pg_round_trips": round(pg, 2), "redis_round_trips": round(rd, 2)}
    return out


def latencies(ports: dict[str, int], customers: int, n: int, block: int = 100
              ) -> dict[str, dict[str, Any]]:
    """p50/p99 of each call on each server, ``n`` calls each, in alternating blocks of
    ``block`` (the configurations' order rotating), so the machine's load drift hits every
    configuration alike."""
    reqs = {c: _requests(port, customers, n) for c, port in ports.items()}
    for port in ports.values():  # warm-up: caches, prepared statements, scripts
        asyncio.run(sequential("127.0.0.1", port, _requests(port, customers, 200)["decide"]))
    parts: dict[tuple[str, str], list[np.ndarray]] = {}
    errors: dict[tuple[str, str], int] = {}
    names = list(ports)
    for b, lo in enumerate(range(0, n, block)):
        for c in names[b % len(names):] + names[: b % len(names)]:
            for call, requests in reqs[c].items():
                r = asyncio.run(sequential("127.0.0.1", ports[c], requests[lo: lo + block]))
                parts.setdefault((c, call), []).append(r.latencies_ms)
                errors[(c, call)] = errors.get((c, call), 0) + r.errors
    out: dict[str, dict[str, Any]] = {c: {} for c in names}
    for (c, call), chunks in parts.items():
        lat = np.concatenate(chunks)
        out[c][call] = {"n": len(lat), "errors": errors[(c, call)],
                        "p50_ms": round(float(np.percentile(lat, 50)), 3),
                        "p99_ms": round(float(np.percentile(lat, 99)), 3)}
    return out


def _servers() -> tuple[str, str, Callable[[], None]]:
    """Redis and PostgreSQL URLs: from the environment, or started here (and stopped)."""
    redis_url, state_url = os.environ.get("BENCH_REDIS_URL"), os.environ.get("MAESTRO_STATE_URL")
    if redis_url and state_url:
        return redis_url, state_url, lambda: None
    sys.path.insert(0, str(ROOT / "tests" / "support"))
    from postgres_server import start_postgres
    from redis_cluster_fixture import start_redis

    redis, postgres = start_redis(), start_postgres()

    def stop() -> None:
        redis.stop()
        postgres.stop()

    return redis.url, postgres.database(), stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    args = parser.parse_args()
    import signal
    import tempfile

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop what was started
    redis_url, state_url, stop = _servers()
    results: dict[str, Any] = {"machine": machine(), "n": args.n}
    servers: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as root:
        try:
            counters = Counters(redis_url, state_url)
            ports = {}
            for config in args.configs.split(","):
                env = _env(config, Path(root, config), redis_url, state_url)
                proc, ports[config] = _start(env, args.customers)
                servers.append(proc)
            results["round_trips"] = {
                c: round_trips(port, counters, args.customers, 300) for c, port in ports.items()
            }
            print(json.dumps(results["round_trips"]), flush=True)
            results["latency"] = latencies(ports, args.customers, args.n)
        finally:
            for proc in servers:
                stop_server(proc)
            stop()
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
