"""In-process decision latency: rules + featurisation + policy, per policy kind.

30 customer features (from the synthetic generator), 3 request-context values, 10 and 50
candidate actions, all eligible. Prints a Markdown table; with ``--write`` replaces the
"In-process decide" section of BENCHMARKS.md.

    .venv/bin/python -m benchmarks.bench_decide [--n 20000] [--write]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import time

import numpy as np

from benchmarks._report import machine, write_section
from features.synthetic import generate_customers
from policies.catalog import load_catalog
from policies.decision import decide_with_rules
from policies.registry import make_policy
from policies.types import CONTACT_CHANNELS, Action, Context, LoggedBatch


def make_inputs(n_actions: int) -> tuple[Context, list[Action]]:
    row = generate_customers(5, seed=1).features.iloc[2].to_dict()
    row.pop("customer_id"), row.pop("event_timestamp")
    names = [k for k in row if not k.startswith(("consent_", "sends_"))][:24]
    customer = {k: row[k].item() if hasattr(row[k], "item") else row[k] for k in names}
    customer.update({f"consent_{c}": True for c in CONTACT_CHANNELS})  # 30 features in all
    request = {"page": "checkout", "device": "mobile", "cart_value": 89.5}
    context = Context("c-000002", customer, request, "cart_abandoned", 1_780_000_000.0)
    channels = ["email", "push", "sms", "in_app", "whatsapp"]
    actions = [
        Action(
            f"act_{i}",
            channels[i % len(channels)],
            {"category": "marketing", "offer": f"offer_{i % 4}", "discount_pct": 5 * (i % 4)},
        )
        for i in range(n_actions)
    ]
    return context, actions


def warm(policy, context, actions, rng) -> None:
    """Train a little so learned policies have non-trivial weights."""
    n = 200
    batch = LoggedBatch(
        [context] * n,
        [actions] * n,
        rng.integers(0, len(actions), n),
        np.full(n, 1.0 / len(actions)),
        rng.random(n),
    )
    policy.learn(batch)


def measure(kind: str, n_actions: int, n: int) -> dict[str, float]:
    rules = load_catalog()["cart_abandoned"].rules
    context, actions = make_inputs(n_actions)
    policy = make_policy(kind, seed=1)
    warm(policy, context, actions, np.random.default_rng(0))
    for i in range(min(2000, n)):
        decide_with_rules(policy, rules, context, actions, i)
    samples = np.empty(n)
    gc.disable()
    try:
        for i in range(n):
            t0 = time.perf_counter_ns()
            decision = decide_with_rules(policy, rules, context, actions, i)
            samples[i] = time.perf_counter_ns() - t0
    finally:
        gc.enable()
    assert len(decision.ranking) == n_actions  # every action eligible
    us = samples / 1000.0
    return {
        "p50": np.percentile(us, 50),
        "p95": np.percentile(us, 95),
        "p99": np.percentile(us, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000, help="decisions per configuration")
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    rows = ["| policy | actions | p50 µs | p95 µs | p99 µs |", "|---|---:|---:|---:|---:|"]
    for kind in ("uniform", "rules", "linucb", "vw-cb", "neural"):
        for n_actions in (10, 50):
            r = measure(kind, n_actions, args.n)
            rows.append(
                f"| {kind} | {n_actions} | {r['p50']:.0f} | {r['p95']:.0f} | {r['p99']:.0f} |"
            )
            print(rows[-1], flush=True)
    body = "\n".join(
        [
            f"Command: `.venv/bin/python -m benchmarks.bench_decide --n {args.n} --write`",
            f"Machine: {machine()}; Python {platform.python_version()}; "
            f"load average during the run {os.getloadavg()[0]:.1f} (other work on the machine "
            "inflates the tails).",
            "",
            "One decision in process: business rules over the candidates, featurisation of",
            "30 customer features + 3 context values, the policy's pmf and the seeded draw",
            "(`policies.decision.decide_with_rules`). Target for `vw-cb` with 10 actions:",
            "p50 ≤ 100 µs, p99 ≤ 300 µs.",
            "",
            *rows,
        ]
    )
    if args.write:
        write_section("In-process decide (issue #2)", body)
    print(body)


if __name__ == "__main__":
    main()
