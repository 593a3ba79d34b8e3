"""``maestro evaluate --logs`` as a user runs it, in real processes: bad input is one
line and exit 2, no support is a null estimate with a reason, the diagnostics are in
the JSON, and the command exits 0 every time on a valid file (no abort at exit)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE = {
    "reward": [1.0, 0.0, 1.0, 0.5],
    "probability": [0.5, 0.5, 0.25, 0.25],
    "target_probability": [1.0, 0.0, 0.5, 0.5],
}
#: each bad file: the column changed, the value put in its third row, and what the one
#: error line must say
BAD = {
    "probability-1e-320": ("probability", 1e-320, "column probability: below 1e-100 in 1 of 4"),
    "probability-0": ("probability", 0.0, r"column probability: outside (0, 1] in 1 of 4"),
    "probability-negative": ("probability", -0.1, "column probability: outside (0, 1]"),
    "probability-nan": ("probability", float("nan"), "column probability: NaN or infinite"),
    "reward-1e200": ("reward", 1e200, "column reward: magnitude above 1e+100 in 1 of 4"),
    "reward-inf": ("reward", float("inf"), "column reward: NaN or infinite in 1 of 4"),
    "missing-column": ("target_probability", None, "missing column(s) target_probability"),
}


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "FEAST_USAGE": "False", "DO_NOT_TRACK": "1"}


def run_evaluate(path: Path) -> subprocess.CompletedProcess[str]:
    """``maestro evaluate --logs PATH`` in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "evaluate", "--logs", str(path)],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120,
    )


def in_parallel(fn: Callable[[Path], subprocess.CompletedProcess[str]], paths: list[Path]):
    """``fn`` over ``paths``, as many at once as this process has cores."""
    with ThreadPoolExecutor(max_workers=max(2, len(os.sched_getaffinity(0)))) as pool:
        return list(pool.map(fn, paths))


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every bad file of :data:`BAD`, evaluated in its own process."""
    root = tmp_path_factory.mktemp("bad")
    paths = []
    for name, (column, value, _) in BAD.items():
        frame = pd.DataFrame(BASE)
        if value is None:
            frame = frame.drop(columns=[column])
        else:
            frame.loc[2, column] = value
        paths.append(root / f"{name}.parquet")
        frame.to_parquet(paths[-1])
    return dict(zip(BAD, in_parallel(run_evaluate, paths), strict=True))


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_exit_2(bad_runs, case: str) -> None:
    result = bad_runs[case]
    assert result.returncode == 2, (case, result.returncode, result.stderr[-2000:])
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("maestro: error: --logs: ") and BAD[case][2] in lines[0]


def test_no_support_is_a_null_estimate_with_a_reason_and_a_warning(tmp_path) -> None:
    path = tmp_path / "nosupport.parquet"
    pd.DataFrame({**BASE, "target_probability": [0.0] * 4, "q_logged": [0.5] * 4,
                  "q_target": [0.4] * 4}).to_parquet(path)
    result = run_evaluate(path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    for name in ("ips", "snips", "clipped_ips", "dr", "switch_dr"):
        assert out["estimators"][name]["value"] is None, name
        assert out["estimators"][name]["ci_low"] is None, name
        assert out["estimators"][name]["reason"].startswith("no support"), name
    assert out["estimators"]["dm"]["value"] == pytest.approx(0.4)
    assert out["diagnostics"]["support"] == 0.0 and out["warnings"][0].startswith("no support")
    assert result.stderr.strip().splitlines() == [f"maestro: warning: {out['warnings'][0]}"]


def test_the_policy_summary_says_why_an_estimate_is_missing() -> None:
    from cli.evaluate import summary, warnings_of

    null = {"value": None, "ci_low": None, "ci_high": None, "reason": "no support: …"}
    point = {"n": 9, "policy": {"snips": null, "dr": {**null, "value": 0.5,
                                                      "reason": "one supported event"}},
             "diagnostics": {}, "warnings": ["policy: no support: …"]}
    text = summary({"decision_points": {"cart_abandoned": point}})
    assert "—  (no support: …)" in text and "0.5000  (one supported event)" in text
    assert warnings_of({"decision_points": {"cart_abandoned": point}}) == [
        "cart_abandoned: policy: no support: …"
    ]


def _valid_file(path: Path, n: int = 2000) -> Path:
    rng = np.random.default_rng(0)
    pd.DataFrame({
        "reward": rng.binomial(1, 0.3, n).astype(float),
        "probability": rng.uniform(0.1, 1.0, n),
        "target_probability": rng.uniform(0.0, 1.0, n),
        "q_logged": np.full(n, 0.3),
        "q_target": np.full(n, 0.3),
    }).to_parquet(path)
    return path


def test_every_evaluation_carries_diagnostics_and_labels_biased_estimators(tmp_path) -> None:
    result = run_evaluate(_valid_file(tmp_path / "ok.parquet"))
    assert result.returncode == 0 and result.stderr == "", result.stderr
    out = json.loads(result.stdout)
    diag = out["diagnostics"]
    assert diag["n"] == 2000 and 0.0 < diag["support"] <= 1.0
    assert diag["max_weight"] >= diag["mean_weight"] > 0 and 30 < diag["ess"] <= 2000
    assert out["warnings"] == []
    assert {k for k, e in out["estimators"].items() if e["biased"]} == {"clipped_ips", "switch_dr"}
    assert "not the policy's value" in out["estimators"]["clipped_ips"]["note"]
    assert out["estimators"]["ips"]["reason"] is None and out["estimators"]["ips"]["note"] is None


def _repeat(tmp_path: Path, runs: int) -> None:
    path = _valid_file(tmp_path / "ok.parquet")
    codes = [r.returncode for r in in_parallel(run_evaluate, [path] * runs)]
    aborted = [c for c in codes if c != 0]
    assert not aborted, f"{len(aborted)} of {runs} runs exited {sorted(set(aborted))}"


def test_forty_runs_on_a_valid_file_all_exit_0(tmp_path) -> None:
    """Before the fix about 1 run in 100 printed its JSON and aborted with 134 at exit."""
    _repeat(tmp_path, 40)


@pytest.mark.slow
def test_two_hundred_runs_on_a_valid_file_all_exit_0(tmp_path) -> None:
    _repeat(tmp_path, 200)
