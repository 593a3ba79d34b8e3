"""Lift per segment: ``variant_table`` splits each decision point's variants by the
segments logged with the decisions; rows logged without the column count in none."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.lift import format_report, variant_table


def test_lift_per_segment() -> None:
    rng = np.random.default_rng(3)
    n = 400
    variants = np.where(np.arange(n) % 2 == 0, "champion", "holdout")
    vip = np.arange(n) % 4 < 2  # half of each variant
    segments = [["vip"] if v else [] for v in vip]
    segments[-1] = None  # a row logged before the column existed
    decisions = pd.DataFrame({
        "event_id": [f"e{i}" for i in range(n)],
        "decision_point": "default",
        "variant": variants,
        "segments": segments,
    })
    # champion beats holdout by 1.0 among VIPs only
    reward = rng.normal(0.0, 0.1, n) + np.where(vip & (variants == "champion"), 1.0, 0.0)
    outcomes = pd.DataFrame({"event_id": decisions["event_id"], "reward": reward})
    table = variant_table(decisions, outcomes, set(decisions["event_id"]))
    entry = table["default"]
    assert sorted(entry["segments"]) == ["vip"]
    seg = {row["variant"]: row for row in entry["segments"]["vip"]["variants"]}
    assert seg["champion"]["decisions"] == 100 and seg["holdout"]["decisions"] == 100
    assert abs(seg["champion"]["lift"]["holdout"]["diff"] - 1.0) < 0.05
    whole = {row["variant"]: row for row in entry["variants"]}
    assert whole["champion"]["decisions"] == 200
    assert abs(whole["champion"]["lift"]["holdout"]["diff"] - 0.5) < 0.05
    text = format_report({"decision_points": table})
    assert "-- default, segment vip" in text


def test_no_segments_column_no_segment_tables() -> None:
    decisions = pd.DataFrame({"event_id": ["a", "b"], "decision_point": "default",
                              "variant": ["champion", "holdout"]})
    outcomes = pd.DataFrame({"event_id": ["a", "b"], "reward": [1.0, 0.0]})
    assert "segments" not in variant_table(decisions, outcomes, set())["default"]
