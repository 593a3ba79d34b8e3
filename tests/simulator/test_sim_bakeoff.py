"""Supervised-to-bandit bake-off on scikit-learn's digits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.bakeoff import Setting, load, main, run_bakeoff, summarise
from simulator.errors import InvalidSimulationConfig


def test_bandit_learners_beat_uniform_and_trail_the_supervised_baseline() -> None:
    settings = [Setting("vw-cb", "epsilon=0.05", {"exploration": "epsilon", "epsilon": 0.05}),
                Setting("linucb", "alpha=0.5", {"alpha": 0.5}),
                Setting("uniform", "-", {})]
    rows = run_bakeoff(["digits"], settings, seeds=[0], limit=700)
    loss = {r.kind: r.loss for r in rows}
    assert loss["uniform"] > 0.8  # ten classes: 90% wrong by chance
    assert loss["vw-cb"] < 0.7 and loss["linucb"] < 0.7
    assert loss["supervised"] < min(loss["vw-cb"], loss["linucb"])
    assert {r.n for r in rows} == {700}


def test_cli_writes_json_and_plot(tmp_path: Path) -> None:
    assert main(["--datasets", "iris", "--limit", "150", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "bakeoff.json").read_text())
    kinds = {r["kind"] for r in data["summary"]}
    assert {"supervised", "vw-cb", "linucb", "neural", "uniform"} <= kinds
    settings = {r["setting"] for r in data["summary"] if r["kind"] == "vw-cb"}
    assert len(settings) >= 5  # the exploration settings are compared
    assert (tmp_path / "bakeoff.png").stat().st_size > 1000


def test_datasets_are_scaled_and_unknown_names_refused() -> None:
    x, _y = load("digits", limit=100, seed=1)
    assert x.shape == (100, 64) and x.min() >= 0 and x.max() <= 1
    assert summarise([]) == []
    with pytest.raises(InvalidSimulationConfig, match="unknown dataset"):
        load("mnist")
