"""``maestro evaluate``: off-policy estimates of a policy on logged decisions.

``--policy`` takes exactly one of three forms, checked before any log is read:

- a policy kind (``uniform``, ``rules``, ``vw-cb``, …): a fresh policy of that kind,
  trained (if it learns) on the earlier part of each decision point's logs;
- ``champion``: each decision point's registered champion;
- ``DECISION_POINT@VERSION``: one registered version of one decision point.

Each decision point's logs are split in time exactly as ``maestro train`` splits them
(the last ``TrainConfig.holdout`` share is held out, 25%), so ``evaluate`` reproduces
the figures ``train`` gated on; estimates are on the held-out part only.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.errors import CommandError
from cli.training import activation_reader
from core.parquet import read_frame
from policies.catalog import load_catalog
from policies.registry import POLICY_KINDS, load_policy, make_policy
from serving.settings import Settings
from training import tracking
from training.data import load_training_set
from training.errors import EstimatorInputError
from training.ope import check_inputs, diagnostics_of, evaluate, table
from training.train import LoggingPolicy, TrainConfig, evaluate_all

POLICY_HELP = "A policy kind, 'champion', or DECISION_POINT@VERSION (a registered version)."
_VERSION_REF = re.compile(r"^(?P<dp>[A-Za-z0-9_.-]+)@(?P<version>[1-9][0-9]*)$")
BYO_REQUIRED = ("reward", "probability", "target_probability")
BYO_MODEL = ("q_logged", "q_target")
#: the file's column for each estimator input, so that errors name the column
BYO_LABELS = {
    "rewards": "reward",
    "logging_probs": "probability",
    "target_probs": "target_probability",
    "q_logged": "q_logged",
    "q_target": "q_target",
}


@dataclass(frozen=True, slots=True)
class PolicyRef:
    """What ``--policy`` names: ``kind`` (a policy kind or ``champion``) or a version."""

    kind: str | None = None
    decision_point: str | None = None
    version: str | None = None


def parse_policy_ref(ref: str, decision_points: list[str]) -> PolicyRef:
    """The ``--policy`` value as one of its three forms, or a :class:`CommandError`."""
    if ref in POLICY_KINDS or ref == "champion":
        return PolicyRef(kind=ref)
    match = _VERSION_REF.match(ref)
    if match is None:
        raise CommandError(
            f"--policy: {ref!r} is not a policy kind ({', '.join(POLICY_KINDS)}), "
            "'champion' or DECISION_POINT@VERSION (for example cart_abandoned@3)"
        )
    if match["dp"] not in decision_points:
        raise CommandError(
            f"--policy: no decision point {match['dp']!r} (known: {', '.join(decision_points)})"
        )
    return PolicyRef(decision_point=match["dp"], version=match["version"])


def evaluate_byo(path: Path) -> dict[str, Any]:
    """The contract's "Bring your own logs": estimators on a Parquet file's columns, with
    the support and overlap diagnostics and their warnings."""
    if not path.is_file():
        raise CommandError(f"--logs: no such file {path}")
    try:
        frame = read_frame(path)
    except Exception as exc:
        raise CommandError(f"--logs: cannot read {path} as Parquet: {exc}") from exc
    missing = [c for c in BYO_REQUIRED if c not in frame.columns]
    if missing:
        raise CommandError(f"--logs: missing column(s) {', '.join(missing)} in {path}")
    has_q = "q_logged" in frame.columns and "q_target" in frame.columns
    columns = BYO_REQUIRED + (BYO_MODEL if has_q else ())
    if frame.empty:
        raise CommandError(f"--logs: no rows in {path}")
    arrays: dict[str, Any] = {}
    for c in columns:
        try:
            arrays[c] = frame[c].to_numpy(float)
        except (TypeError, ValueError) as exc:
            raise CommandError(f"--logs: column {c} is not numeric: {exc}") from exc
    try:
        checked = check_inputs(
            arrays["reward"],
            arrays["probability"],
            arrays["target_probability"],
            arrays.get("q_logged"),
            arrays.get("q_target"),
            labels=BYO_LABELS,
        )
    except EstimatorInputError as exc:
        raise CommandError(f"--logs: column {exc}") from exc
    evaluation = evaluate(*checked)
    return {
        "n": len(frame),
        "estimators": table(evaluation),
        "diagnostics": evaluation.diagnostics.as_dict(),
        "warnings": list(evaluation.diagnostics.warnings),
    }


def evaluate_policy_ref(settings: Settings, ref: str, logs: Path | None) -> dict[str, Any]:
    """OPE of the policy ``ref`` names on Maestro's logs, beside the logging policy,
    uniform and the champion, per decision point with logs."""
    catalog = load_catalog(settings.catalog_file)
    parsed = parse_policy_ref(ref, catalog.names())
    full = load_training_set(
        logs or settings.log_location, catalog, time.time(), None, settings.reward_mode,
        activation_reader(settings, catalog),
    )
    out: dict[str, Any] = {
        "policy": ref,
        "decision_points": {},
        "log_report": full.report.as_dict(),
    }
    priorities = catalog.journey_priorities()
    logged = sorted(set(full.frame["decision_point"]))
    if parsed.decision_point is not None and parsed.decision_point not in logged:
        raise CommandError(f"--policy: no logged decisions at {parsed.decision_point!r}")
    for dp in logged:
        if parsed.decision_point not in (None, dp):
            continue
        ts = full.subset((full.frame["decision_point"] == dp).to_numpy())
        train, holdout = ts.split(TrainConfig().holdout) if len(ts) >= 4 else (ts, ts)
        champ = tracking.load_champion_bytes(dp, settings.tracking_uri)
        if parsed.kind == "champion":
            if champ is None:
                continue
            target = load_policy(champ[0])
        elif parsed.kind is not None:
            target = make_policy(
                parsed.kind, **({"priorities": priorities} if parsed.kind == "rules" else {})
            )
            if not target.context_free:
                target.learn(train.batch)
        else:
            blob = tracking.load_version_bytes(dp, parsed.version, settings.tracking_uri)
            target = load_policy(blob)
        compared = {
            "policy": target,
            "logging": LoggingPolicy(holdout),
            "uniform": make_policy("uniform"),
        }
        if champ is not None:
            compared["champion"] = load_policy(champ[0])
        estimates = evaluate_all(compared, holdout, train, 0.05)
        out["decision_points"][dp] = {
            "n": len(holdout),
            **{name: table(est) for name, est in estimates.items()},
            **_diagnostics(estimates),
        }
    if not out["decision_points"]:
        raise CommandError(
            "--policy champion: no decision point with logs has a champion: "
            "run `maestro init` or `maestro train --promote`"
        )
    return out


def _diagnostics(estimates: dict[str, Any]) -> dict[str, Any]:
    """``{"diagnostics": {policy: {...}}, "warnings": ["policy: ...", ...]}`` of the
    compared policies' evaluations on one decision point."""
    diags = {name: diagnostics_of(est) for name, est in estimates.items()}
    return {
        "diagnostics": {name: d.as_dict() for name, d in diags.items() if d is not None},
        "warnings": [
            f"{name}: {w}" for name, d in diags.items() if d is not None for w in d.warnings
        ],
    }


def warnings_of(result: dict[str, Any]) -> list[str]:
    """Every warning of an evaluation's result (``--logs`` or ``--policy``), one line
    each, prefixed by its decision point when there are several."""
    if "decision_points" not in result:
        return list(result.get("warnings", []))
    return [
        f"{dp}: {w}"
        for dp, per in sorted(result["decision_points"].items())
        for w in per.get("warnings", [])
    ]


def summary(result: dict[str, Any]) -> str:
    """A short table: per decision point and compared policy, each estimate with its
    95% interval (the JSON, with every figure, is ``--json``)."""
    lines = [
        f"{'decision point':<22} {'policy':<10} {'n':>6}  "
        f"{'estimator':<9} {'estimate':>9}  95% interval"
    ]
    for dp, per in sorted(result["decision_points"].items()):
        for name, estimates in per.items():
            if name in ("n", "diagnostics", "warnings"):
                continue
            for est, e in estimates.items():
                if est not in ("snips", "dr"):
                    continue
                lines.append(f"{dp:<22} {name:<10} {per['n']:>6}  {est:<9} {_figures(e)}")
    lines.append("(SNIPS and DR shown; --json prints every estimator and the diagnostics)")
    return "\n".join(lines)


def _figures(e: dict[str, Any]) -> str:
    """An estimate and its interval for the summary table, or why there is none."""
    if e["value"] is None:
        return f"{'—':>9}  ({e['reason']})"
    if e["ci_low"] is None:
        return f"{e['value']:>9.4f}  ({e['reason']})"
    return f"{e['value']:>9.4f}  [{e['ci_low']:.4f}, {e['ci_high']:.4f}]"
