"""A custom feature's worth in the simulator: ``vw-cb`` retrained with it against ``vw-cb``
trained without it, by exact value on the simulator's truth.

The world (``simulation.yaml``'s format, :mod:`simulator.hidden_effects`): ``digital_score``
uniform in [0, 20], response to email and in-app × ``max(0, 1 + z)``, to push, SMS,
WhatsApp and call centre × ``max(0, 1 - z)``. Per seed: ``--train`` rounds logged by the
uniform policy in that world with the feature in the contexts, and the same rounds from
the world where it was never declared (same customers, same draws); one ``vw-cb`` learns
from each (its recorded inputs: the features its logs carried); both are valued exactly
(``Σ π(a|x) q*(x, a)``) on ``--held`` held-out uniform rounds that carry the feature.

    .venv/bin/python -m benchmarks.bench_custom_feature_sim [--seeds 1,2,3] [--write]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from benchmarks._report import machine, write_section

WORLD = """\
custom_features:
  digital_score:
    low: 0
    high: 20
    effects:
      - {channels: [email, in_app], weight: 1.0}
      - {channels: [push, sms, whatsapp, call_center], weight: -1.0}
"""


def one_seed(seed: int, train: int, held_n: int) -> dict[str, float]:
    from simulator.environment import EnvConfig, JourneyEnvironment
    from simulator.gate_trial import true_value
    from simulator.hidden_effects import load_custom_features
    from simulator.run import build_policy, run_policy

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "simulation.yaml"
        path.write_text(WORLD)
        world = load_custom_features(path)

    def env(hidden: frozenset[str]) -> JourneyEnvironment:
        return JourneyEnvironment(EnvConfig(customers=1000, custom_features=world, hidden=hidden))

    seen = env(frozenset())
    uniform = build_policy("uniform", seen.catalog, seed)
    held = run_policy(uniform, seen, held_n, seed + 100, learn=False, keep_batch=True)
    out = {"uniform": true_value(uniform, held.batch, held.truths)}
    out["best action"] = float(sum(t.max() for t in held.truths) / len(held.truths))
    for name, hidden in (("with", frozenset()), ("without", frozenset({"digital_score"}))):
        world_env = env(hidden)
        log = run_policy(build_policy("uniform", world_env.catalog, seed), world_env, train,
                         seed, learn=False, keep_batch=True)
        policy = build_policy("vw-cb", world_env.catalog, seed)
        policy.learn(log.batch)
        policy.record_inputs(sorted(set().union(*(c.customer for c in log.batch.contexts))))
        out[name] = true_value(policy, held.batch, held.truths)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--train", type=int, default=20_000)
    parser.add_argument("--held", type=int, default=5_000)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    rows = [
        "| seed | vw-cb with the feature | vw-cb without | margin | uniform | best action |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    started = time.perf_counter()
    margins = []
    for seed in (int(s) for s in args.seeds.split(",")):
        r = one_seed(seed, args.train, args.held)
        margins.append(r["with"] - r["without"])
        rows.append(
            f"| {seed} | {r['with']:.4f} | {r['without']:.4f} | {margins[-1]:+.4f} | "
            f"{r['uniform']:.4f} | {r['best action']:.4f} |"
        )
        print(rows[-1], flush=True)
    body = (
        f"Machine: {machine()} (load average {os.getloadavg()[0]:.1f}; values are exact, "
        f"not timed). Command: `python -m benchmarks.bench_custom_feature_sim --seeds "
        f"{args.seeds} --train {args.train} --held {args.held}` "
        f"({time.perf_counter() - started:.0f} s). Mean reward per decision on the held-out "
        "rounds' truth; the test `tests/simulator/test_sim_custom_features.py` asserts a "
        "margin above 0.01 for each of these seeds.\n\n"
        + "\n".join(rows)
        + f"\n\nMean margin {sum(margins) / len(margins):+.4f} per decision."
    )
    print(body)
    if args.write:
        write_section("A custom feature's worth in the simulator", body)


if __name__ == "__main__":
    main()
