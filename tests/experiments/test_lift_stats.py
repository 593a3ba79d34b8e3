"""Lift statistics against hand computations on small tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from training.lift import (
    compare,
    format_report,
    mean_interval,
    sample_size,
    variant_table,
    welch,
)

HOLDOUT = np.array([0.0, 1.0, 0.0, 0.0, 1.0])  # mean 0.4, s² = (3·0.16 + 2·0.36)/4 = 0.3
CHAMPION = np.array([1.0, 1.0, 0.0, 1.0, 1.0, 0.0])  # mean 2/3, s² = (4/9 + 8/9)/5 = 4/15


def test_mean_interval_by_hand() -> None:
    ci = mean_interval(HOLDOUT)
    assert ci is not None
    # t_{0.975, 4} = 2.7764 (tables); s/√n = √0.3/√5
    half = 2.7764451 * math.sqrt(0.3) / math.sqrt(5)
    assert ci.value == pytest.approx(0.4)
    assert ci.ci_low == pytest.approx(0.4 - half, abs=1e-6)
    assert ci.ci_high == pytest.approx(0.4 + half, abs=1e-6)
    assert mean_interval(np.array([])) is None
    one = mean_interval(np.array([2.0]))
    assert one is not None and one.ci_low == one.ci_high == 2.0


def test_welch_lift_by_hand() -> None:
    out = welch(CHAMPION, HOLDOUT)
    assert out is not None
    va, vb = (4 / 15) / 6, 0.3 / 5  # s²/n per arm
    se = math.sqrt(va + vb)  # 0.323179
    df = (va + vb) ** 2 / (va**2 / 5 + vb**2 / 4)  # Welch–Satterthwaite: 8.4233
    assert se == pytest.approx(0.3231787, abs=1e-6)
    assert df == pytest.approx(8.42326, abs=1e-4)
    assert out["se"] == pytest.approx(se)
    assert out["df"] == pytest.approx(df)
    assert out["diff"] == pytest.approx(2 / 3 - 0.4)
    t = 2.2859895  # t_{0.975, 8.4233}
    assert out["ci_low"] == pytest.approx(2 / 3 - 0.4 - t * se, abs=1e-6)  # -0.47212
    assert out["ci_high"] == pytest.approx(2 / 3 - 0.4 + t * se, abs=1e-6)  # 1.00545
    assert out["p_value"] == pytest.approx(0.43204, abs=1e-4)
    assert out["relative"] == pytest.approx((2 / 3 - 0.4) / 0.4)
    assert welch(CHAMPION, np.array([1.0])) is None


def test_large_samples_match_the_normal_approximation() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 2.0, 50_000), rng.normal(0.9, 1.0, 40_000)
    out = welch(a, b)
    assert out is not None
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    assert out["ci_high"] - out["diff"] == pytest.approx(1.959964 * se, rel=1e-3)
    assert out["ci_low"] < 0.1 < out["ci_high"]


def test_sample_size_by_hand() -> None:
    # (z_0.975 + z_0.8)² = 2.8015852² = 7.84888; equal arms, σ² = 1 each, δ = 0.1
    n_a, n_b = sample_size(1.0, 1.0, 0.1)
    assert (n_a, n_b) == (math.ceil(7.848880 * 2 / 0.01), math.ceil(7.848880 * 2 / 0.01))
    assert n_a == 1570
    # a 19:1 allocation (95% variant, 5% holdout): n_B = z²(σ²_A/k + σ²_B)/δ²
    n_a, n_b = sample_size(1.0, 1.0, 0.1, ratio=19.0)
    assert n_b == math.ceil(7.848880 * (1 / 19 + 1) / 0.01)
    assert n_a == math.ceil(19 * 7.848880 * (1 / 19 + 1) / 0.01)
    with pytest.raises(ValueError):
        sample_size(1.0, 1.0, 0.0)


def test_compare_reports_what_is_still_needed() -> None:
    out = compare(CHAMPION, HOLDOUT, mde=0.1)
    assert out is not None
    ss = out["sample_size"]
    ratio = 6 / 5
    z2 = 2.8015852**2
    need_b = math.ceil(z2 * ((4 / 15) / ratio + 0.3) / 0.01)
    assert ss["required"]["baseline"] == need_b
    assert ss["remaining"]["baseline"] == need_b - 5
    assert ss["remaining"]["variant"] == ss["required"]["variant"] - 6
    # the default effect: 10% of the baseline's mean
    assert compare(CHAMPION, HOLDOUT)["sample_size"]["mde"] == pytest.approx(0.04)  # type: ignore[index]


def test_variant_table_and_text() -> None:
    ids_h = [f"h{i}" for i in range(5)]
    ids_c = [f"c{i}" for i in range(6)]
    decisions = pd.DataFrame(
        {
            "event_id": [*ids_h, *ids_c, "pending"],
            "decision_point": "cart_abandoned",
            "variant": ["holdout"] * 5 + ["champion"] * 7,
        }
    )
    outcomes = pd.DataFrame({"event_id": ids_h + ids_c, "reward": [*HOLDOUT, *CHAMPION]})
    table = variant_table(decisions, outcomes, rewarded=set(ids_c[:4]))
    rows = {r["variant"]: r for r in table["cart_abandoned"]["variants"]}
    champ = rows["champion"]
    assert champ["decisions"] == 7 and champ["matured"] == 6 and champ["rewards"] == 4
    assert champ["reward_sum"] == 4.0
    assert champ["mean_reward"] == pytest.approx(2 / 3)
    assert champ["lift"]["holdout"]["diff"] == pytest.approx(2 / 3 - 0.4)
    assert "rules" not in champ["lift"]
    assert rows["holdout"]["lift"] == {}
    text = format_report({"decision_points": table})
    assert "cart_abandoned" in text and "+0.2667 [-0.4721, +1.0054]" in text
