"""What experiments cost: the assignment hook on ``decide`` and the lift report's time.

1. ``DecisionService.decide`` in process (in-memory features, cold-start ``rules``
   champion, no HTTP), interleaved blocks without experiments, with experiments and a
   new customer on every call (sticky-table read + queued write), and with experiments
   and known customers (in-memory cache): per-call latency percentiles.
2. ``training.lift.experiment_report`` over the Parquet logs those decisions produced
   (plus one reward per decision): wall time per logged decision.

    .venv/bin/python -m benchmarks.bench_experiments [--decisions 20000] [--write]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._report import machine, write_section


def _service(home: Path, with_experiments: bool, customers: int):  # type: ignore[no-untyped-def]
    from features.source import InMemoryFeatureSource
    from policies.catalog import load_catalog
    from serving.eventlog.log import EventLog
    from serving.experiments.variants import AssignmentTable, Experiments, parse_experiments
    from serving.service.decision_service import DecisionService
    from serving.service.feature_layer import InMemoryFeatureLayer
    from serving.service.ids import EventIdSigner
    from serving.service.policy_store import PolicyStore

    catalog = load_catalog(None)
    consent = {f"consent_{c}": True for c in ("email", "push", "sms", "in_app", "whatsapp")}
    layer = InMemoryFeatureLayer(
        InMemoryFeatureSource({f"c-{i:07d}": dict(consent) for i in range(customers)})
    )
    exp = None
    if with_experiments:
        config = parse_experiments(
            {"salt": "bench", "holdout": 0.05, "decision_points": {
                "cart_abandoned": {"variants": {"champion": 0.7, "rules": 0.3}}}},
            catalog,
        )
        exp = Experiments(config, catalog, AssignmentTable(home / "experiments.db"))
    return DecisionService(
        catalog=catalog, features=layer, writer=layer, policies=PolicyStore(catalog, None),
        log=EventLog(home / "logs", roll_seconds=3600), signer=EventIdSigner(b"b" * 32),
        experiments=exp,
    ).start()


def bench_decide(n: int, root: Path) -> dict[str, dict[str, float]]:
    from serving.api.schemas import DecideRequest, RewardRequest

    arms = {
        "no experiments": _service(root / "plain", False, n),
        "experiments, new customers": _service(root / "new", True, n),
        "experiments, known customers": _service(root / "known", True, n),
    }
    known = arms["experiments, known customers"]
    for i in range(2000):  # warm its cache and table
        known.experiments.variant_of(f"c-{i:07d}", "cart_abandoned")  # type: ignore[union-attr]
    times: dict[str, list[float]] = {k: [] for k in arms}
    rng = np.random.default_rng(0)
    block = 200
    for start in range(0, n, block):
        for name in rng.permutation(list(arms)):
            service = arms[name]
            for i in range(start, min(n, start + block)):
                cid = f"c-{(i % 2000):07d}" if name.endswith("known customers") else f"c-{i:07d}"
                req = DecideRequest(customer_id=cid, decision_point="cart_abandoned",
                                    context={})
                t0 = time.perf_counter()
                body = service.decide(req)
                times[name].append(time.perf_counter() - t0)
                if name == "experiments, new customers":
                    import orjson

                    service.reward(RewardRequest(event_id=orjson.loads(body)["event_id"],
                                                 reward=float(rng.random() < 0.1)))
    out = {}
    for name, t in times.items():
        arr = np.array(t) * 1e6
        out[name] = {"p50": float(np.percentile(arr, 50)), "p90": float(np.percentile(arr, 90)),
                     "p99": float(np.percentile(arr, 99)), "n": len(arr)}
    for service in arms.values():
        service.close()
    return out


def bench_report(logs: Path) -> tuple[int, float]:
    from policies.catalog import load_catalog
    from training.lift import experiment_report

    catalog = load_catalog(None)
    t0 = time.perf_counter()
    report = experiment_report(logs, catalog, now=time.time() + 10 * 86400)
    seconds = time.perf_counter() - t0
    n = sum(v["decisions"] for e in report["decision_points"].values() for v in e["variants"])
    return n, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--write", action="store_true", help="write BENCHMARKS.md's section")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        decide = bench_decide(args.decisions, root)
        n, seconds = bench_report(root / "new" / "logs")
    load = os.getloadavg()[0]
    rows = "\n".join(
        f"| {name} | {r['p50']:.0f} | {r['p90']:.0f} | {r['p99']:.0f} | {r['n']} |"
        for name, r in decide.items()
    )
    body = f"""Command: `.venv/bin/python -m benchmarks.bench_experiments --decisions {args.decisions}
--write` · machine: {machine()} · load average at the end: {load:.1f} (shared machine).

`DecisionService.decide` in process (in-memory features, `rules` champion, no HTTP),
interleaved blocks of 200, µs:

| arm | p50 | p90 | p99 | n |
| --- | ---: | ---: | ---: | ---: |
{rows}

`experiment_report` (read + join exactly as training does + Welch intervals) over {n}
logged decisions with rewards: {seconds:.2f} s ({1e6 * seconds / max(n, 1):.0f} µs per
decision). `GET /experiments` recomputes it only when a Parquet file was added.
"""
    print(body)
    if args.write:
        write_section("Experiments: assignment cost and the lift report", body)


if __name__ == "__main__":
    main()
