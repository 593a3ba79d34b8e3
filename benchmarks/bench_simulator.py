"""Journey simulator throughput: decision-plus-learn steps per second, in process, one core.

Measures, on the simulator's own world (1,000 customers, every customer feature the
feature store serves, the catalog's actions split by the rules):

1. environment alone (a uniform policy, which costs next to nothing);
2. ``vw-cb`` deciding and learning every step (batches of 32), the issue's figure
   (target: 5,000 steps/s on one core), with the per-step split between the
   environment, ``decide`` and ``learn``;
3. wall time of a 100,000-step, 10,000-customer ``vw-cb`` run.

Run pinned to one core; with ``--write`` it replaces the "Journey simulator" section
of BENCHMARKS.md:

    taskset -c 1 .venv/bin/python -m benchmarks.bench_simulator [--steps 20000] [--write]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from benchmarks._report import machine, write_section
from policies.base import seed_from_event_id
from policies.decision import decide_among
from policies.types import LoggedBatch
from simulator.environment import EnvConfig, JourneyEnvironment
from simulator.run import build_policy, run_policy


def split_costs(env: JourneyEnvironment, steps: int, seed: int = 1) -> dict[str, float]:
    """Microseconds per step in the environment, in ``decide`` and in ``learn`` (vw-cb)."""
    policy = build_policy("vw-cb", env.catalog, seed)
    obs = env.reset(seed=seed)
    t_env = t_decide = t_learn = 0.0
    pending: list[tuple[object, ...]] = []
    for t in range(steps):
        a = time.perf_counter()
        d = decide_among(policy, obs.context, obs.eligible, obs.excluded,
                         seed_from_event_id(f"b-{t}"), f"b-{t}")
        b = time.perf_counter()
        result = env.step(d)
        c = time.perf_counter()
        idx = obs.eligible.index(result.action)
        pending.append((obs.context, obs.eligible, idx, d.probability, result.reward))
        if len(pending) == 32:
            ctx, acts, ix, p, r = zip(*pending, strict=True)
            policy.learn(LoggedBatch(list(ctx), list(acts), np.array(ix), np.array(p),
                                     np.array(r)))
            pending = []
        t_learn += time.perf_counter() - c
        t_decide += b - a
        t_env += c - b
        obs = result.next_observation
    return {k: v / steps * 1e6 for k, v in
            (("env", t_env), ("decide", t_decide), ("learn", t_learn))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--big-steps", type=int, default=100_000)
    parser.add_argument("--big-customers", type=int, default=10_000)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    load_before = f"{os.getloadavg()[0]:.2f}"
    env = JourneyEnvironment(EnvConfig(customers=1_000))
    run_policy(build_policy("uniform", env.catalog, 0), env, 2_000, seed=0)  # warm caches
    uni = run_policy(build_policy("uniform", env.catalog, 0), env, args.steps, seed=1)
    vw = run_policy(build_policy("vw-cb", env.catalog, 0), env, args.steps, seed=1)
    costs = split_costs(env, min(args.steps, 10_000))

    big_env = JourneyEnvironment(EnvConfig(customers=args.big_customers))
    start = time.perf_counter()
    big = run_policy(build_policy("vw-cb", big_env.catalog, 0), big_env, args.big_steps, seed=2)
    big_total = time.perf_counter() - start  # includes building the customer base

    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    rows = [
        ("environment alone (uniform policy)", f"{args.steps / uni.seconds:,.0f}"),
        ("vw-cb decide + learn (batches of 32)", f"{args.steps / vw.seconds:,.0f}"),
    ]
    table = "\n".join(f"| {name} | {rate} |" for name, rate in rows)
    body = f"""
Machine: {machine()}; process pinned to CPU(s) {affinity} (`taskset -c 1`).
Command: `taskset -c 1 .venv/bin/python -m benchmarks.bench_simulator --steps {args.steps} --write`

World: 1,000 customers (every served feature, ~90 per context), the catalog's five
decision points, rules applied every step, true expected rewards of every candidate.

| {args.steps:,}-step run | steps/s |
| --- | --- |
{table}

Per step with vw-cb (µs): environment {costs['env']:.0f}, `decide` {costs['decide']:.0f},
`learn` {costs['learn']:.0f} (amortised over batches of 32).

A {args.big_steps:,}-step, {args.big_customers:,}-customer vw-cb run: {big_total:.1f} s wall
({args.big_steps / big.seconds:,.0f} steps/s in the loop; mean regret {big.regret.mean():.3f}).

Load average while running: {load_before} before, {os.getloadavg()[0]:.2f} after (the
machine is shared; figures on an idle core are higher).

Target: 5,000 decision-plus-learn steps/s with vw-cb on one core —
{"met" if args.steps / vw.seconds >= 5_000 else "NOT met"}: `decide` + `learn` cost
{costs['decide'] + costs['learn']:.0f} µs a step (VW renders and parses a ~90-feature
shared line in Python for every decision and again for learning), the environment
{costs['env']:.0f} µs (building the validated `Context`, the rules, the truth for every
candidate, the customer's life events and counters).
"""
    print(body)
    if args.write:
        write_section("Journey simulator", body)


if __name__ == "__main__":
    main()
