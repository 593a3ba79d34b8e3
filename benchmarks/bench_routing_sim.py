"""Routing bake-off in the routing simulator: random assignment among qualified agents
(``uniform``), "least busy qualified agent", ``linucb`` and ``vw-cb``, by exact regret and
resolution rate over several episode seeds; then continuity's worth (``vw-cb`` seeing the
``continuity`` feature or blind to it, with the simulator's default continuity effect and
with a strong one). With ``--write`` the "Agent routing simulator" section of
BENCHMARKS.md is replaced.

    .venv/bin/python -m benchmarks.bench_routing_sim [--steps 4000] [--seeds 1,2,3] [--write]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from benchmarks._report import machine, write_section
from simulator.routing import RoutingConfig, compare_routers

KINDS = ("uniform", "least-busy", "linucb", "vw-cb")


def mean_sd(values: list[float]) -> str:
    a = np.asarray(values, dtype=float)
    return f"{a.mean():.3f} ± {a.std(ddof=1) if len(a) > 1 else 0.0:.3f}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    command = " ".join([".venv/bin/python -m benchmarks.bench_routing_sim", *sys.argv[1:]])
    runs = {s: compare_routers(KINDS, RoutingConfig(), args.steps, s) for s in seeds}
    cols = [("expected_resolution_rate", "true resolution rate"),
            ("resolution_rate", "realised resolution rate"),
            ("final_expected_resolution_rate", "true resolution, 2nd half"),
            ("mean_expected_reward", "true mean reward"),
            ("mean_regret", "regret / case"), ("continuity_rate", "same agent again"),
            ("steps_per_second", "cases / s")]
    lines = [
        f"Machine: {machine()}. Command: `{command}`.",
        f"Routing world (`simulator/routing.py`, defaults): 12 agents in three language "
        f"groups, 300 customers, 2 cases/minute, continuity bonus 0.8 logit; {args.steps} "
        f"cases per run, mean ± sd over episode seeds {seeds}; routers learn online every "
        "32 cases. Reward = resolved − 0.01·handle minutes + 0.25·(CSAT − 3)/2 (catalog).",
        "",
        "| router | " + " | ".join(c[1] for c in cols) + " |",
        "| --- | " + " | ".join("---" for _ in cols) + " |",
    ]
    for kind in KINDS:
        cells = [mean_sd([runs[s][kind][key] for s in seeds]) for key, _ in cols]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines += ["", "Continuity as a feature (`vw-cb`, same seeds):", "",
              "| continuity bonus | sees continuity | true mean reward | true resolution rate "
              "| same agent again |", "| --- | --- | --- | --- | --- |"]
    for bonus in (0.8, 1.5):
        for seen in (True, False):
            cfg = RoutingConfig(continuity_bonus=bonus, continuity_feature=seen)
            res = [compare_routers(["vw-cb"], cfg, args.steps, s)["vw-cb"] for s in seeds]
            lines.append(
                f"| {bonus} | {'yes' if seen else 'no'} | "
                f"{mean_sd([r['mean_expected_reward'] for r in res])} | "
                f"{mean_sd([r['expected_resolution_rate'] for r in res])} | "
                f"{mean_sd([r['continuity_rate'] for r in res])} |")
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("Agent routing simulator", text)


if __name__ == "__main__":
    main()
