"""Attribution rules on the simulator's multi-step journeys (:mod:`simulator.journeys`):
each step's share of the credit under last touch, linear and time decay, against its true
share of the journey's incremental value.

    PYTHONPATH=. python -m benchmarks.bench_attribution [--journeys 20000] [--seed 0]
"""

from __future__ import annotations

import argparse

from simulator.journeys import figure_table, simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--journeys", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    fig = simulate(args.journeys, args.seed)
    print(f"{args.journeys} journeys, {fig.conversions} purchases (seed {args.seed})")
    print(figure_table(fig))


if __name__ == "__main__":
    main()
