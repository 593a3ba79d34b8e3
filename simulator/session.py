"""``maestro simulate``: run the policies (or a live Maestro), check OPE, write the report.

After an in-process run, the off-policy estimates of the trained policies are checked
against the environment's truth (:mod:`simulator.ope_check`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from client import MaestroClient
from simulator.environment import EnvConfig, JourneyEnvironment
from simulator.errors import InvalidSimulationConfig
from simulator.hidden_effects import CustomFeature
from simulator.http_client import run_target
from simulator.ope_check import validate_for_report
from simulator.report import write_report
from simulator.run import RunLog, compare, progress_bar


def ope_sizes(steps: int, cap: int = 5_000) -> tuple[int, ...]:
    """Two logged-data sizes for the OPE check: a tenth of the data, and all of it (capped)."""
    top = min(steps, cap)
    return tuple(sorted({max(top // 10, 50), top}))


def simulate(
    policies: Sequence[str],
    customers: int,
    steps: int,
    seed: int,
    out: str | Path,
    target: str | None = None,
    api_key: str | None = None,
    check_ope: bool = True,
    ope_seeds: int = 3,
    show_progress: bool | None = None,
    customer_seed: int = 7,
    custom_features: tuple[CustomFeature, ...] = (),
) -> dict[str, Any]:
    """Run the simulation and write ``out/report.json``, ``out/report.html`` and PNGs.

    In process, each kind in ``policies`` runs ``steps`` decisions on the same world
    (episode ``seed``), learning online; then, with ``check_ope``, the trained
    policies' values are estimated from uniform-random logs and checked against the
    truth. With ``target``, the live Maestro at that URL is driven over HTTP instead
    (``policies`` is then ignored: the service's champion decides). ``custom_features``
    (``simulation.yaml``) give the world custom features with hidden effects.
    """
    if steps < 1 or customers < 1:
        raise InvalidSimulationConfig("steps and customers must be >= 1")
    env = JourneyEnvironment(EnvConfig(customers=customers, customer_seed=customer_seed,
                                       custom_features=custom_features))
    config: dict[str, Any] = {"customers": customers, "steps": steps, "seed": seed,
                              "customer_seed": customer_seed,
                              "custom_features": [f.name for f in custom_features],
                              "mode": "target" if target else "in_process"}
    runs: dict[str, RunLog] = {}
    ope: dict[str, Any] | None = None
    if target:
        config["target"] = target
        with MaestroClient(target, api_key) as client, \
                progress_bar(steps, "target", show_progress) as bar:
            log = run_target(client, env, steps, seed, progress=bar.update)
        runs[log.policy] = log
    else:
        if not policies:
            raise InvalidSimulationConfig("give at least one policy kind", field="policies")
        config["policies"] = list(policies)
        trained = compare(policies, env, steps, seed, show_progress=show_progress)
        runs = {k: log for k, (log, _) in trained.items()}
        if check_ope:
            sizes = ope_sizes(steps)
            seeds = [seed + 1000 + i for i in range(ope_seeds)]
            targets = {k: p for k, (_, p) in trained.items()}
            result = validate_for_report(env, targets, sizes=sizes, seeds=seeds,
                                   logging_kind="uniform")
            ope = {"logging_policy": "uniform", "targets": list(targets), "seeds": seeds,
                   **result}
    return write_report(runs, out, config=config, ope=ope)
