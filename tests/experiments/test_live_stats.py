"""The dashboard's live recorder: per-second counts, channel mix, latency percentiles."""

from __future__ import annotations

import pytest

from serving.dashboard.live import LiveStats


def test_snapshot_series_mix_and_percentiles() -> None:
    live = LiveStats(window=300)
    t0 = 1_000_000
    for s in range(20):
        for k in range(s % 5 + 1):  # 1..5 decisions a second
            channel = "email" if k % 2 == 0 else None
            live.record(t0 + s + 0.5, "champion" if k else "holdout", channel, k == 4,
                        (k + 1) / 1000)
    snap = live.snapshot(now=t0 + 19, seconds=20, bin_seconds=10)
    assert snap["decisions_per_second"]["t"] == list(range(t0, t0 + 20))
    assert snap["decisions_per_second"]["n"] == [s % 5 + 1 for s in range(20)]
    total = sum(s % 5 + 1 for s in range(20))
    assert snap["decisions_total"] == total
    assert snap["degraded_rate"] == pytest.approx(4 / total)  # k == 4 four times
    assert snap["current_rate"] == pytest.approx(sum(s % 5 + 1 for s in range(10, 20)) / 10)
    assert snap["channels"] == ["email", "none"]
    for b in snap["channel_mix"]:
        assert sum(b["shares"].values()) == pytest.approx(1.0)
    assert snap["variants"]["holdout"] == 20
    lat = snap["latency_ms"]
    assert lat["samples"] == total
    assert 1.0 <= lat["p50"] <= lat["p90"] <= lat["p99"] <= 5.0
    assert len(snap["latency_series"]["t"]) == 2


def test_old_seconds_are_dropped_and_champion_changes_timestamped() -> None:
    live = LiveStats(window=10)
    for s in range(100):
        live.record(float(s), "champion", "push", False, 0.001)
    assert len(live._seconds) <= 16
    assert live.snapshot(now=99, seconds=10)["decisions_total"] == 10
    live.champion("default", "rules", "0", "cold_start")
    live.champion("default", "rules", "0", "cold_start")  # unchanged: no new entry
    live.champion("default", "vw-cb", "3", "champion")
    snap = live.snapshot(now=99)
    assert [c["version"] for c in snap["champion_history"]] == ["0", "3"]
    assert snap["champions"][0]["policy"] == "vw-cb"
