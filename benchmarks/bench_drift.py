"""Drift: alarm delay after a preference flip, false alarms without one, and how fast
regret recovers with online learning against a model frozen at the change.

In the journey simulator (:mod:`simulator.regime`), a ``vw-cb`` policy learns from its
own traffic; the served detectors (ADWIN on reward residuals, one per decision point)
watch from ``watch`` steps on, as after a promotion. At ``change`` every customer's
preferences among the eligible actions flip (best ↔ worst). Two arms share everything
up to the flip: ``online`` keeps learning from each reward batch (``learn_every`` 32
steps, as ``MAESTRO_ONLINE_LEARNING`` learns from joined rewards), ``frozen`` stops
learning at the flip (a champion waiting for its next training run). Per seed:

- alarm delay: steps from the flip to the first residual alarm;
- false alarms: alarms in the watched steps before the flip, and over whole runs with no
  flip at all (both arms), per 10,000 watched steps;
- regret per step: the mean of the ``window`` steps before the flip, of the first
  ``window`` after it, and of the last ``window`` of the run; recovery: steps after the
  flip until the mean regret over the last ``window`` steps is within 10% of its
  pre-flip level (``—``: not within the run).

It also times what the server's monitor adds per decision and per reward
(:class:`serving.service.drift.DriftMonitor`, 30 customer features, 10 actions), beside
the policy's own pmf on the same inputs.

    .venv/bin/python -m benchmarks.bench_drift [--seeds 5] [--steps 20000] [--write]
"""

from __future__ import annotations

import argparse
import statistics
import time

from benchmarks._report import machine, write_section
from simulator.environment import EnvConfig, JourneyEnvironment
from simulator.regime import DriftTrial, PreferenceFlip, run_drift_trial
from simulator.run import build_policy


def trial(seed: int, steps: int, change: int | None, cut: int | None, watch: int,
          customers: int) -> DriftTrial:  # fmt: skip
    """One run; learning stops at ``cut`` (None: never)."""
    env = JourneyEnvironment(EnvConfig(customers=customers))
    policy = build_policy("vw-cb", env.catalog, seed)
    learn = (lambda t: True) if cut is None else (lambda t: t < cut)
    return run_drift_trial(policy, PreferenceFlip(env, change), steps, seed=seed, learn=learn,
                           watch_from=watch)  # fmt: skip


def _fmt(values: list[float | None], digits: int = 0) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "—"
    med = statistics.median(known)
    missing = len(values) - len(known)
    text = f"{med:.{digits}f} [{min(known):.{digits}f}–{max(known):.{digits}f}]"
    return text + (f", {missing} never" if missing else "")


def study(seeds: int, steps: int, change: int, watch: int, window: int,
          customers: int) -> dict[str, dict[str, object]]:  # fmt: skip
    rows: dict[str, dict[str, object]] = {}
    for arm, cut in (("online", None), ("frozen", change)):
        runs = [trial(s, steps, change, cut, watch, customers) for s in range(seeds)]
        quiet = [trial(s, steps, None, cut, watch, customers) for s in range(seeds)]
        before = [float(r.regret[change - window : change].mean()) for r in runs]
        rows[arm] = {
            "delay": [r.delay for r in runs],
            "false_pre": sum(r.false_alarms for r in runs),
            "watched_pre": sum(r.watched for r in runs),
            "false_quiet": sum(r.false_alarms for r in quiet),
            "watched_quiet": sum(r.watched for r in quiet),
            "before": before,
            "after": [float(r.regret[change : change + window].mean()) for r in runs],
            "end": [float(r.regret[-window:].mean()) for r in runs],
            "recovery": [r.recovery(window) for r in runs],
        }
    return rows


def monitor_cost(n: int = 20_000) -> list[str]:
    """Microseconds per ``decided``/``rewarded`` call, and per policy pmf, as table rows."""
    from benchmarks.bench_decide import make_inputs
    from policies.registry import make_policy
    from serving.service.drift import DriftMonitor, DriftOptions
    from serving.service.metrics import Metrics
    from serving.service.policy_store import LoadedPolicy

    ctx, actions = make_inputs(10)
    rows = []
    for kind, online in (("rules", False), ("vw-cb", True)):
        monitor = DriftMonitor(Metrics(), DriftOptions(online=online, max_updates=10**9))
        loaded = LoadedPolicy(make_policy(kind), "1", "champion")
        start = time.perf_counter()
        for i in range(n):
            monitor.decided(str(i), loaded, ctx, actions, actions[3], 0.1)
        decided = (time.perf_counter() - start) / n * 1e6
        start = time.perf_counter()
        for i in range(n):
            monitor.rewarded(str(i), float(i % 3), lambda _, served=loaded: served)
        rewarded = (time.perf_counter() - start) / n * 1e6
        start = time.perf_counter()
        for _ in range(n):
            loaded.policy.pmf(ctx, actions)
        pmf = (time.perf_counter() - start) / n * 1e6
        mode = "online learning" if online else "detectors only"
        rows.append(f"| {kind} ({mode}) | {decided:.1f} | {rewarded:.1f} | {pmf:.1f} |")
    return rows


def report(rows: dict[str, dict[str, object]], args: argparse.Namespace, seconds: float) -> str:
    lines = [
        f"`vw-cb` in the journey simulator ({args.customers} customers), {args.seeds} seeds "
        f"(0–{args.seeds - 1}), {args.steps} steps; detectors watch from step {args.watch}, "
        f"preferences flip at step {args.change}; ADWIN δ = 0.002 on reward residuals "
        f"(reference: the first 250 rewards watched per decision point); regret windows of "
        f"{args.window} steps. Median [min–max] over seeds.",
        "",
        "| arm | alarm delay (steps) | false alarms before the flip | false alarms, no flip "
        "| regret/step before | first window after | last window | recovery to ≤ 110% (steps) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arm, r in rows.items():
        pre = 1e4 * r["false_pre"] / max(1, r["watched_pre"])  # type: ignore[operator]
        quiet = 1e4 * r["false_quiet"] / max(1, r["watched_quiet"])  # type: ignore[operator]
        lines.append(
            f"| {arm} | {_fmt(r['delay'])} | {r['false_pre']} ({pre:.2f} per 10k steps) "  # type: ignore[arg-type]
            f"| {r['false_quiet']} ({quiet:.2f} per 10k steps) | {_fmt(r['before'], 3)} "  # type: ignore[arg-type]
            f"| {_fmt(r['after'], 3)} | {_fmt(r['end'], 3)} | {_fmt(r['recovery'])} |"  # type: ignore[arg-type]
        )
    lines += [
        "",
        "What the monitor adds on the server, µs per call (the `pmf` column: the policy's own "
        "pmf on the same 30-feature context and 10 actions, for scale; `rewarded` with online "
        "learning includes VW's update):",
        "",
        "| champion | per decision | per reward | policy pmf |",
        "|---|---|---|---|",
        *monitor_cost(),
        "",
        f"Command: `.venv/bin/python -m benchmarks.bench_drift --seeds {args.seeds} --steps "
        f"{args.steps} --change {args.change} --watch {args.watch} --write` ({seconds:.0f} s on "
        f"{machine()}).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--change", type=int, default=10_000)
    parser.add_argument("--watch", type=int, default=5_000)
    parser.add_argument("--window", type=int, default=1_000)
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    if not args.window <= args.watch < args.change < args.steps:
        parser.error("need window <= watch < change < steps")
    start = time.perf_counter()
    rows = study(args.seeds, args.steps, args.change, args.watch, args.window, args.customers)
    text = report(rows, args, time.perf_counter() - start)
    print(text)
    if args.write:
        write_section("Drift: a preference flip, its alarm, and online learning", text)


if __name__ == "__main__":
    main()
