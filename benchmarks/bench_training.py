"""Training throughput (Parquet logs → registered model) and OPE time for 1M events.

Logs are written in the serving layer's Parquet schema from synthetic customers
(``features.synthetic``), the shipped catalog's ``cart_abandoned`` actions filtered by
its rules, and a uniform logging policy. ``run_training`` then reads, joins, trains a
``vw-cb`` candidate, evaluates it off-policy against champion/uniform/rules and registers
it in a real MLflow SQLite store. Throughput = logged events / wall time, on one core.

    .venv/bin/python -m benchmarks.bench_training [--events 50000] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._report import machine, write_section


def write_logs(logs: Path, n: int, seed: int = 0) -> None:
    from features.synthetic import generate_customers
    from policies.catalog import load_catalog
    from policies.registry import make_policy
    from policies.types import Context

    rng = np.random.default_rng(seed)
    point = load_catalog()["cart_abandoned"]
    base = generate_customers(2000, seed=seed).features.drop(columns=["event_timestamp"])
    rows = base.to_dict("records")
    policy = make_policy("uniform")
    t0 = 1_780_000_000.0
    decisions, rewards = [], []
    for i in range(n):
        row = rows[int(rng.integers(len(rows)))]
        cid = row["customer_id"]
        customer = {
            k: (v.item() if hasattr(v, "item") else v) for k, v in row.items() if k != "customer_id"
        }
        ctx = Context(cid, customer, {"page": "cart", "device": "mobile"}, "cart_abandoned", t0 + i)
        eligible, excluded = point.rules.split(ctx, point.actions)
        d = policy.decide(ctx, eligible, seed=i)
        pmf = policy.pmf(ctx, eligible)
        event_id = f"ev-{i}"
        decisions.append(
            {
                "event_id": event_id,
                "request_id": None,
                "timestamp": pd.Timestamp(t0 + i, unit="s", tz="UTC"),
                "customer_id": cid,
                "decision_point": "cart_abandoned",
                "customer_features": json.dumps(customer),
                "context": json.dumps(dict(ctx.request)),
                "actions": json.dumps(
                    [
                        {"id": a.id, "channel": a.channel, "features": dict(a.features)}
                        for a in eligible
                    ]
                ),
                "probabilities": json.dumps(pmf.tolist()),
                "excluded": json.dumps(
                    [{"action_id": e.action_id, "reason": e.reason} for e in excluded]
                ),
                "action_id": d.action.id,
                "channel": d.action.channel,
                "probability": d.probability,
                "policy": "uniform",
                "policy_version": "0",
                "variant": "champion",
                "explored": False,
                "degraded": False,
                "reward_deadline": pd.Timestamp(t0 + i + 3600, unit="s", tz="UTC"),
                "replica": "bench",
            }
        )
        p_click = (
            0.05 + 0.3 * float(customer.get(f"consent_{d.action.channel}", False)) * rng.random()
        )
        if rng.random() < p_click:
            rewards.append(
                {
                    "event_id": event_id,
                    "reward": 1.0,
                    "timestamp": pd.Timestamp(t0 + i + 60, unit="s", tz="UTC"),
                    "counted": True,
                    "duplicate": False,
                    "late": False,
                    "replica": "bench",
                }
            )
    (logs / "decisions").mkdir(parents=True)
    (logs / "rewards").mkdir(parents=True)
    pd.DataFrame(decisions).to_parquet(logs / "decisions" / "part-0.parquet")
    pd.DataFrame(rewards).to_parquet(logs / "rewards" / "part-0.parquet")


def bench_training(n: int) -> dict[str, float]:
    from policies.catalog import load_catalog
    from training.data import load_training_set
    from training.train import TrainConfig, run_training

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        write_logs(home / "logs", n)
        catalog = load_catalog()
        uri = f"sqlite:///{home / 'mlflow.db'}"
        # one-time costs left out of the throughput: imports and creating the MLflow store
        import mlflow  # noqa: F401
        import sklearn.linear_model  # noqa: F401

        from training import tracking

        tracking.champion_version("cart_abandoned", uri)
        t0 = time.perf_counter()
        ts = load_training_set(home / "logs", catalog, now=2e9)
        t_join = time.perf_counter() - t0
        mean_actions = float(np.mean([len(a) for a in ts.batch.actions]))
        t0 = time.perf_counter()
        (result,) = run_training(
            home / "logs",
            catalog,
            uri,
            TrainConfig(kind="vw-cb"),
            now=2e9,
        )
        total = time.perf_counter() - t0
    return {
        "events": n,
        "seconds": total,
        "events_per_s": n / total,
        "join_s": t_join,
        "mean_actions": mean_actions,
        "n_train": result.n_train,
    }


def bench_ope(n: int = 1_000_000) -> dict[str, float]:
    from training.ope import evaluate

    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 1.0, n)
    pi = rng.uniform(0.0, 1.0, n)
    r = (rng.random(n) < 0.3).astype(float)
    q = rng.random(n)
    t0 = time.perf_counter()
    evaluate(r, p, pi, q, q * 0.9)
    return {"events": n, "seconds": time.perf_counter() - t0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
    tr = bench_training(args.events)
    ope = bench_ope()
    body = "\n".join(
        [
            f"Command: `.venv/bin/python -m benchmarks.bench_training --events {args.events} --write`",
            f"Machine: {machine()}; Python {platform.python_version()}; one process, one core.",
            "",
            "| what | figure |",
            "|---|---:|",
            f"| logged events (cart_abandoned, {tr['mean_actions']:.1f} eligible actions on average) | {tr['events']:,} |",
            f"| read + join (Parquet → LoggedBatch) | {tr['join_s']:.2f} s |",
            f"| whole run: read, join, train vw-cb on {tr['n_train']:,}, OPE ×4 policies, MLflow register | {tr['seconds']:.2f} s |",
            f"| **training throughput, Parquet logs → registered model** | **{tr['events_per_s']:,.0f} events/s** |",
            f"| OPE, all estimators (IPS, clipped IPS, SNIPS, DM, DR, Switch-DR) on 1,000,000 events | {ope['seconds']:.2f} s |",
        ]
    )
    print(body)
    if args.write:
        write_section("Training and off-policy evaluation (issue #6)", body)


if __name__ == "__main__":
    main()
