"""ADWIN, PSI and one decision point's detectors: a known change is found within a bound,
and on a stationary stream false alarms are counted against ADWIN's confidence."""

from __future__ import annotations

import numpy as np
import pytest

from training.drift.adwin import Adwin
from training.drift.alarms import alarm_path, alarms_since, append_alarm
from training.drift.detectors import FEATURES, RESIDUAL, Alarm, PointDrift, ResidualBaseline
from training.drift.psi import Bins, fit_bins, worst_psi
from training.errors import EstimatorInputError


def _first_after(detector: Adwin, values: np.ndarray, start: int) -> tuple[int | None, int]:
    """(delay of the first detection at or after ``start``, detections before it)."""
    early = 0
    for i, v in enumerate(values):
        if detector.update(v):
            if i >= start:
                return i - start, early
            early += 1
    return None, early


@pytest.mark.parametrize("shift", [0.5, 1.0], ids=["half-sd", "one-sd"])
def test_adwin_finds_a_mean_shift_within_a_bound(shift: float) -> None:
    delays, early = [], 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        x = np.r_[rng.normal(0, 1, 2000), rng.normal(shift, 1, 2000)]
        delay, before = _first_after(Adwin(), x, 2000)
        assert delay is not None, f"seed {seed}: shift {shift} never detected"
        delays.append(delay)
        early += before
    # the bound for a 2000-value history: ~8·ln(2 ln n/δ)/shift² values, plus the clock
    assert max(delays) <= (400 if shift == 0.5 else 120)
    assert early <= 1


def test_adwin_window_tracks_the_new_mean_after_a_change() -> None:
    rng = np.random.default_rng(3)
    detector = Adwin()
    for v in np.r_[rng.normal(0, 1, 3000), rng.normal(2, 1, 1000)]:
        detector.update(v)
    assert detector.width < 1500
    assert detector.mean == pytest.approx(2.0, abs=0.15)


def test_adwin_false_alarm_rate_on_a_stationary_stream_is_small() -> None:
    checks = alarms = 0
    for seed in range(20):
        rng = np.random.default_rng(1000 + seed)
        detector = Adwin(delta=0.002)
        alarms += sum(detector.update(v) for v in rng.normal(0, 1, 5000))
        checks += 5000 // detector.clock
    rate = alarms / checks  # per check; δ bounds it (with ln n spent over the splits)
    assert rate <= 0.002, f"{alarms} false alarms in {checks} checks"


def test_adwin_keeps_exact_sums_and_variance_while_compressing() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(3, 2, 777)
    detector = Adwin(clock=10**9)  # never tests splits: the window keeps everything
    for v in x:
        detector.update(v)
    assert detector.width == 777
    assert detector.total == pytest.approx(x.sum(), rel=1e-12)
    assert detector.m2 / detector.width == pytest.approx(x.var(), rel=1e-9)
    buckets = sum(len(r) for r in detector._rows)
    assert buckets <= detector.max_buckets * (len(detector._rows))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"delta": 0.0}, "delta"), ({"delta": 1.5}, "delta"), ({"max_buckets": 1}, "max_buckets")],
    ids=["delta-zero", "delta-above-one", "buckets"],
)
def test_adwin_rejects_bad_parameters(kwargs: dict, match: str) -> None:
    with pytest.raises(EstimatorInputError, match=match):
        Adwin(**kwargs)


def test_adwin_rejects_a_non_finite_value() -> None:
    with pytest.raises(EstimatorInputError, match="finite"):
        Adwin().update(float("nan"))


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    bins = Bins.fit(rng.normal(0, 1, 2000))
    assert bins.shares.sum() == pytest.approx(1.0, abs=1e-12)
    assert bins.psi(rng.normal(0, 1, 2000)) < 0.05
    assert bins.psi(rng.normal(1, 1, 2000)) > 0.25


def test_psi_of_hand_computed_shares() -> None:
    bins = Bins(np.array([0.5]), np.array([0.5, 0.5]))
    q = np.array([0.8, 0.2])  # 8 of 10 values below the edge
    expected = float(np.sum((q - 0.5) * np.log(q / 0.5)))
    assert bins.psi([0.0] * 8 + [1.0] * 2) == pytest.approx(expected, abs=1e-12)


def test_fit_bins_skips_constant_columns_and_worst_psi_names_the_shifted_feature() -> None:
    rng = np.random.default_rng(1)
    ref = fit_bins({"a": rng.normal(0, 1, 500), "b": rng.normal(0, 1, 500), "c": [1.0] * 500})
    assert set(ref) == {"a", "b"}
    name, value = worst_psi(ref, {"a": rng.normal(0, 1, 500), "b": rng.normal(2, 1, 500)})
    assert name == "b" and value > 1.0


def test_residual_baseline_predicts_each_actions_reference_mean() -> None:
    base = ResidualBaseline(reference=4)
    for action, reward in [("x", 1.0), ("x", 3.0), ("y", 0.0), ("y", 0.0)]:
        assert base.residual(action, reward) is None
    assert base.residual("x", 5.0) == pytest.approx(3.0, abs=1e-12)
    assert base.residual("unseen", 1.0) == pytest.approx(0.0, abs=1e-12)  # overall mean 1


def test_point_drift_raises_a_residual_alarm_after_a_preference_flip() -> None:
    rng = np.random.default_rng(2)
    drift = PointDrift("dp", reference=200, window=100)
    means = {"a": 1.0, "b": 0.0}
    alarms: list[Alarm] = []
    for step in range(4000):
        if step == 2000:
            means = {"a": 0.0, "b": 1.0}  # the preference flip
        action = "a" if rng.random() < 0.8 else "b"
        alarm = drift.reward(action, means[action] + rng.normal(0, 0.5), now=float(step))
        if alarm is not None:
            alarms.append(alarm)
    assert alarms and all(a.detector == RESIDUAL for a in alarms)
    assert 2000 <= alarms[0].timestamp <= 2300
    # by the end the residual window holds the new regime: worse than predicted
    assert drift.adwin.mean < -0.3 and drift.adwin.width <= 2100  # ~the 2000 since the flip


def test_point_drift_raises_a_feature_alarm_on_a_shifted_window() -> None:
    rng = np.random.default_rng(4)
    drift = PointDrift("dp", window=200)
    out = [drift.features({"spend": v}) for v in rng.normal(0, 1, 400)]
    assert out == [None] * 400  # reference, then a window like it
    out = [drift.features({"spend": v}) for v in rng.normal(1.5, 1, 200)]
    assert out[:-1] == [None] * 199 and out[-1] is not None
    assert out[-1].detector == FEATURES and out[-1].value > 0.25
    assert "spend" in out[-1].detail
    out = [drift.features({"spend": v}) for v in rng.normal(1.5, 1, 200)]
    assert out == [None] * 200 and drift.psi > 0.25  # still shifted: no second alarm
    [drift.features({"spend": v}) for v in rng.normal(0, 1, 200)]  # back under
    out = [drift.features({"spend": v}) for v in rng.normal(1.5, 1, 200)]
    assert out[-1] is not None  # a new shift: a new alarm


def test_alarm_file_round_trip_skips_torn_lines(tmp_path) -> None:
    path = alarm_path(tmp_path)
    append_alarm(path, Alarm("dp", RESIDUAL, -0.5, 100.0, "d"), "r1")
    append_alarm(path, Alarm("dp", FEATURES, 0.4, 200.0), "r2")
    with path.open("a") as f:
        f.write('{"decision_point": "dp", "detec')  # a torn line
    assert [a.detector for a in alarms_since(path, 0.0)] == [RESIDUAL, FEATURES]
    assert [a.timestamp for a in alarms_since(path, 150.0)] == [200.0]
    assert alarms_since(tmp_path / "none.jsonl", 0.0) == []
