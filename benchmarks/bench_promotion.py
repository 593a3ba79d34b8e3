"""Promotion at 6,000 visits: what the cross-fitted gate promotes, against the truth.

For each seed, ``steps`` decisions are logged in the journey simulator under the
cold-start champion (``rules`` with the catalog's journeys and the catalog's exploration
floor at ``cart_abandoned``), then the gate of ``maestro train --promote`` (its defaults:
cross-fitted over 4 folds, 95% paired DR interval, minimum lift 0, 200 events and 200
effective ones) judges four candidates (:mod:`simulator.gate_trial`): ``vw-cb`` trained
with ``maestro train``'s defaults (the candidate that would be promoted is trained on
every event), ``better`` (the journey the truth ranks best), ``aa`` (the champion itself)
and ``worse`` (the journeys reversed). The simulator's truth says whether each promotion
was right. ``--folds 1`` gives the former single 25% split for comparison.

    .venv/bin/python -m benchmarks.bench_promotion [--seeds 20] [--steps 6000] [--write]
"""

from __future__ import annotations

import argparse
import statistics

from benchmarks._report import machine, write_section
from policies.catalog import load_catalog
from simulator.gate_trial import CANDIDATES, TrialResult, gate_trial, log_traffic
from training.train import TrainConfig

SECTION = "Promotion at 6,000 visits: the cross-fitted gate against the truth"


def run(seeds: range, steps: int, customers: int, folds: int) -> list[TrialResult]:
    """Every candidate's gate decision for every seed (module docstring)."""
    catalog = load_catalog()
    floor = catalog["cart_abandoned"].exploration_floor
    trials = []
    for seed in seeds:
        log = log_traffic(catalog, floor, steps, customers, seed)
        cfg = TrainConfig(kind="vw-cb", seed=seed, folds=folds)
        for name in CANDIDATES:
            trials.append(gate_trial(log, catalog, floor, name, seed, cfg=cfg))
        done = [t for t in trials if t.seed == seed]
        print(" ".join(f"{t.candidate}:{t.true_lift:+.3f}{'P' if t.promoted else ''}"
                       for t in done), f"seed {seed}", flush=True)
    return trials


def table(trials: list[TrialResult], seeds: range, steps: int, folds: int) -> str:
    lines = [
        f"Command: `python -m benchmarks.bench_promotion --seeds {len(seeds)} --steps {steps}"
        f" --folds {folds}` (seeds {seeds.start}–{seeds.stop - 1}), 2,000 customers, gate at "
        f"`cart_abandoned`, floor {trials[0].floor:.2f}. Machine: {machine()}.",
        "",
        "| candidate | truly better (true lift > 0) | promoted | promoted and truly better "
        "| false promotions | median true lift | median estimate [95% CI] | median events "
        "(effective) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in CANDIDATES:
        ts = [t for t in trials if t.candidate == name]
        p = [t.verdict.paired for t in ts]
        lines.append(
            f"| {name} | {sum(t.true_lift > 0 for t in ts)}/{len(ts)} "
            f"| {sum(t.promoted for t in ts)} "
            f"| {sum(t.promoted and t.true_lift > 0 for t in ts)} "
            f"| {sum(t.false_promotion for t in ts)} "
            f"| {statistics.median(t.true_lift for t in ts):+.3f} "
            f"| {statistics.median(x.diff for x in p):+.3f} "
            f"[{statistics.median(x.ci_low for x in p):+.3f}, "
            f"{statistics.median(x.ci_high for x in p):+.3f}] "
            f"| {statistics.median(x.n for x in p):.0f} ({statistics.median(x.ess for x in p):.0f}) |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--write", action="store_true", help="Replace the BENCHMARKS.md section.")
    args = parser.parse_args()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    trials = run(seeds, args.steps, args.customers, args.folds)
    text = table(trials, seeds, args.steps, args.folds)
    print(text)
    if args.write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
