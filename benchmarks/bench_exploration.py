"""Exploration floor: the reward it costs against the events the promotion gate needs.

For each floor ``f`` and seed, ``steps`` decisions are logged in the journey simulator
under the cold-start champion (``rules`` with the catalog's journeys and floor ``f``),
then the paired gate of ``maestro train --promote`` is run at ``cart_abandoned`` for four
candidates (:mod:`simulator.gate_trial`: ``vw-cb`` trained on the first 75%, ``better``
— the journey the truth ranks best —, ``aa`` and ``worse``), and the simulator's truth
says whether each promotion was right. Reported per floor:

- the reward the floor costs: true expected reward per decision given up against the
  same champion without exploration, ``f·(V(greedy) − V(uniform))``, over every decision
  point, and as a share of the greedy champion's value;
- the per-event spread ``sd`` of the paired difference (``se·√n``) for ``better``, and the
  held-out events the gate needs to clear zero on its true lift ``Δ``, ``(z·sd/Δ)²``,
  converted to simulated steps (held-out ``cart_abandoned`` rows per step);
- the effective (Kish) events among the held-out ones, which the gate also counts;
- promotions at ``steps`` steps, and false promotions (true lift ≤ 0).

The gate here is the single 25% split (``folds=1``), whose held-out events the table
counts; ``maestro train`` cross-fits it by default (``benchmarks.bench_promotion``).

    .venv/bin/python -m benchmarks.bench_exploration [--seeds 6] [--steps 6000] [--write]
"""

from __future__ import annotations

import argparse
import math
import statistics

from benchmarks._report import machine, write_section
from policies.catalog import load_catalog
from simulator.gate_trial import CANDIDATES, champion_policy, floor_cost, gate_trial, log_traffic
from simulator.gate_trial import true_value as value_on
from training.train import TrainConfig

FLOORS = (0.05, 0.1, 0.2, 0.3, 0.5)
Z = 1.959963984540054


def study(floor: float, seeds: int, steps: int, customers: int) -> dict[str, object]:
    """Every candidate's gate decision for ``seeds`` seeds at ``floor`` (module docstring)."""
    catalog = load_catalog()
    costs, shares, spreads, needed, rows_per_step, ess = [], [], [], [], [], []
    outcome = {c: [0, 0, 0] for c in CANDIDATES}  # promoted, false promotions, truly better
    for seed in range(seeds):
        log = log_traffic(catalog, floor, steps, customers, 1000 + seed)
        cost = floor_cost(log, catalog, floor)
        assert log.batch is not None and log.truths is not None
        greedy = value_on(champion_policy(catalog, 0.0), log.batch, log.truths)
        costs.append(cost)
        shares.append(cost / greedy)
        for name in CANDIDATES:
            cfg = TrainConfig(kind="vw-cb", seed=1000 + seed, folds=1)  # the 25% split
            trial = gate_trial(log, catalog, floor, name, 1000 + seed, cfg=cfg)
            outcome[name][0] += trial.promoted
            outcome[name][1] += trial.false_promotion
            outcome[name][2] += trial.true_lift > 0
            if name == "better" and trial.true_lift > 0:
                p = trial.verdict.paired
                sd = p.se * math.sqrt(p.n)
                spreads.append(sd)
                ess.append(p.ess)
                needed.append((Z * sd / trial.true_lift) ** 2)
                rows_per_step.append(p.n / steps)
    n_needed = statistics.median(needed) if needed else math.inf
    return {
        "floor": floor,
        "cost": statistics.mean(costs),
        "share": statistics.mean(shares),
        "sd": statistics.median(spreads) if spreads else math.nan,
        "ess": statistics.median(ess) if ess else math.nan,
        "needed": n_needed,
        "steps_needed": n_needed / statistics.mean(rows_per_step) if rows_per_step else math.inf,
        "outcome": outcome,
        "held_out": statistics.mean(rows_per_step) * steps if rows_per_step else math.nan,
    }


def table(rows: list[dict[str, object]], seeds: int, steps: int, customers: int) -> str:
    lines = [
        f"{seeds} seeds per floor, {steps:,} steps, {customers:,} customers; gate at "
        "`cart_abandoned` (25% held out, 95% paired DR interval, minimum lift 0). "
        f"Machine: {machine()}.",
        "",
        "| floor | reward cost / decision | share of greedy value | per-event sd (better) "
        "| effective / held-out events | held-out events to clear 0 | ≈ steps "
        "| promoted vw-cb / better / aa / worse | false promotions |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out = r["outcome"]
        assert isinstance(out, dict)
        promoted = " / ".join(f"{out[c][0]}" for c in CANDIDATES)
        false = sum(v[1] for v in out.values())
        lines.append(
            f"| {r['floor']:.2f} | {r['cost']:.4f} | {100 * r['share']:.1f}% | {r['sd']:.1f} "
            f"| {r['ess']:.0f} / {r['held_out']:.0f} | {r['needed']:,.0f} | {r['steps_needed']:,.0f} | {promoted} | {false} |"
        )
    lines.append("")
    lines.append(
        "Truly better candidates (true lift > 0) among vw-cb trials per floor: "
        + ", ".join(f"{r['floor']:.2f}: {r['outcome']['vw-cb'][2]}/{seeds}" for r in rows)  # type: ignore[index]
        + "."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--floors", default=",".join(str(f) for f in FLOORS))
    parser.add_argument("--write", action="store_true", help="Replace the BENCHMARKS.md section.")
    args = parser.parse_args()
    floors = [float(f) for f in args.floors.split(",")]
    rows = []
    for floor in floors:
        rows.append(study(floor, args.seeds, args.steps, args.customers))
        print(table(rows, args.seeds, args.steps, args.customers).splitlines()[-3], flush=True)
    text = table(rows, args.seeds, args.steps, args.customers)
    print(text)
    if args.write:
        write_section("Exploration floor and the promotion gate", text)


if __name__ == "__main__":
    main()
