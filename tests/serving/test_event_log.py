"""Unit tests of the event log and the signed event ids (real SQLite and Parquet in tmp_path)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from serving.eventlog.log import EventLog
from serving.eventlog.roll import read_segment, roll_segment
from serving.service.ids import EventIdSigner
from training.logs.records import DecisionRecord
from training.logs.schema import DECISION_SCHEMA

ROOT = Path(__file__).resolve().parents[2]


def _row(event_id: str, customer: str = "c-1", **changes: Any) -> DecisionRecord:
    fields: dict[str, Any] = {
        "event_id": event_id,
        "request_id": None,
        "timestamp": time.time(),
        "customer_id": customer,
        "decision_point": "default",
        "customer_features": '{"consent_email":true}',
        "context": '{"page":"home"}',
        "actions": '[{"id":"a","channel":"email","features":{}}]',
        "probabilities": "[1.0]",
        "excluded": "[]",
        "action_id": "a",
        "channel": "email",
        "probability": 1.0,
        "policy": "rules",
        "policy_version": "1",
        "variant": "champion",
        "explored": False,
        "degraded": False,
        "customer_known": True,
        "reward_deadline": time.time() + 60,
        "shadow_policy": None,
        "shadow_policy_version": None,
        "shadow_action_id": None,
        "shadow_probability": None,
    }
    fields.update(changes)
    return DecisionRecord(**fields)


def test_signed_ids_round_trip_and_reject_forgeries() -> None:
    signer = EventIdSigner(b"k" * 32)
    deadline = time.time() + 3600
    eid = signer.issue(deadline)
    parsed = signer.verify(eid)
    assert parsed is not None and abs(parsed.deadline - deadline) < 0.002
    assert len(eid) == 44 and int(eid, 16) >= 0
    assert signer.verify(eid[:-1] + ("0" if eid[-1] != "0" else "1")) is None
    assert signer.verify(eid[:20] + "f" + eid[21:]) is None or eid[20] == "f"
    assert EventIdSigner(b"j" * 32).verify(eid) is None
    assert signer.verify("short") is None and signer.verify("z" * 44) is None
    assert signer.issue(deadline) != eid
    with pytest.raises(ValueError, match="at least 16 bytes"):
        EventIdSigner(b"short")


def test_ids_tagged_with_the_legacy_hmac_still_verify() -> None:
    """Ids issued before the BLAKE2b tag (HMAC-SHA256) keep their rewards after an upgrade."""
    import hmac

    key = b"k" * 32
    body = "0123456789abcdef" + f"{int((time.time() + 60) * 1000):012x}"
    legacy = body + hmac.new(key, body.encode(), "sha256").digest()[:8].hex()
    assert EventIdSigner(key).verify(legacy) is not None
    assert EventIdSigner(b"j" * 32).verify(legacy) is None
    fresh = EventIdSigner(key).issue(time.time() + 60)
    assert fresh[28:] != hmac.new(key, fresh[:28].encode(), "sha256").digest()[:8].hex()


def test_a_signing_key_longer_than_blake2b_takes_still_signs() -> None:
    signer = EventIdSigner(b"L" * 100)
    eid = signer.issue(time.time() + 60)
    assert signer.verify(eid) is not None
    assert EventIdSigner(b"L" * 99 + b"M").verify(eid) is None


def test_roll_writes_parquet_and_close_removes_the_spool(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "logs", roll_seconds=3600).open()
    for i in range(10):
        log.append_decision(_row(f"e{i}"))
    log.record_reward("e1", 1.0, late=False)
    assert log.roll() == 11
    assert log.roll() == 0  # nothing new
    log.append_decision(_row("e10"))
    log.close()
    frame = pd.read_parquet(tmp_path / "logs" / "decisions")
    assert sorted(frame["event_id"]) == sorted(f"e{i}" for i in range(11))
    assert list(frame.columns) == DECISION_SCHEMA.names
    assert str(frame["timestamp"].dt.tz) == "UTC"
    rewards = pd.read_parquet(tmp_path / "logs" / "rewards")
    assert rewards["event_id"].tolist() == ["e1"] and rewards["counted"].tolist() == [True]
    assert not any((tmp_path / "logs" / "spool").iterdir())


def test_rolling_the_same_segment_twice_does_not_duplicate(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "logs", roll_seconds=3600).open()
    for i in range(5):
        log.append_decision(_row(f"e{i}"))
    log.sync()
    seg = next(log.spool_dir.glob("seg-*.jsonl"))
    # a crash between the Parquet rename and the segment delete: rolled again, same part
    roll_segment(seg, log.dataset, f"{log.name}-000000001")
    log.close()
    assert len(list((tmp_path / "logs" / "decisions").glob("*.parquet"))) == 1
    assert len(pd.read_parquet(tmp_path / "logs" / "decisions")) == 5


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "logs", roll_seconds=3600).open()
    log.append_decision(_row("whole"))
    seg = next(log.spool_dir.glob("seg-*.jsonl"))
    with open(seg, "ab") as fh:
        fh.write(b'{"_t": "d", "event_id": "tor')  # a power cut mid-write
    decisions, _, bad = read_segment(seg)
    assert [d["event_id"] for d in decisions] == ["whole"] and bad == 1
    log.close()
    assert pd.read_parquet(tmp_path / "logs" / "decisions")["event_id"].tolist() == ["whole"]


def test_group_commit_within_the_window(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "logs", flush_ms=50, roll_seconds=3600).open()
    try:
        log.append_decision(_row("e0"))
        assert log.unsynced_seconds() >= 0.0
        time.sleep(0.3)
        assert log.unsynced_seconds() == 0.0
    finally:
        log.close()


def test_reward_idempotency_is_shared_by_replicas(tmp_path: Path) -> None:
    a = EventLog(tmp_path / "logs", roll_seconds=3600).open()
    b = EventLog(tmp_path / "logs", roll_seconds=3600).open()
    try:
        assert a.record_reward("e1", 1.0, late=False).duplicate is False
        second = b.record_reward("e1", 1.0, late=False)
        assert second.duplicate is True and second.accepted is False
        late = b.record_reward("e2", 1.0, late=True)
        assert late.accepted is False and late.duplicate is False
    finally:
        a.close()
        b.close()
    rewards = pd.read_parquet(tmp_path / "logs" / "rewards")
    assert rewards.groupby("event_id")["counted"].sum().to_dict() == {"e1": 1, "e2": 0}


def test_sum_mode_counts_every_reward(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "logs", roll_seconds=3600, reward_mode="sum").open()
    try:
        assert log.record_reward("e1", 1.0, late=False).accepted
        again = log.record_reward("e1", 2.0, late=False)
        assert again.accepted and again.duplicate
    finally:
        log.close()


def test_crashed_process_is_recovered_by_the_next_one(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import os, signal, sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from serving.eventlog.log import EventLog
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_event_log import _row
        log = EventLog({str(tmp_path / "logs")!r}, roll_seconds=3600).open()
        for i in range(25):
            log.append_decision(_row(f"crash-{{i}}"))
        log.record_reward("crash-3", 1.0, late=False)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, timeout=120)
    assert proc.returncode == -9
    assert list((tmp_path / "logs" / "spool").glob("*/seg-*.jsonl"))
    assert not list((tmp_path / "logs" / "decisions").glob("*.parquet"))
    survivor = EventLog(tmp_path / "logs", roll_seconds=3600).open()  # recovers on open
    try:
        frame = pd.read_parquet(tmp_path / "logs" / "decisions")
        assert sorted(frame["event_id"]) == sorted(f"crash-{i}" for i in range(25))
        assert pd.read_parquet(tmp_path / "logs" / "rewards")["event_id"].tolist() == ["crash-3"]
        assert [p.name for p in (tmp_path / "logs" / "spool").glob("*.lock")] == [
            f"{survivor.name}.lock"
        ]
    finally:
        survivor.close()


def test_a_live_replica_spool_is_not_taken_over(tmp_path: Path) -> None:
    live = EventLog(tmp_path / "logs", roll_seconds=3600).open()
    try:
        live.append_decision(_row("live-1"))
        other = EventLog(tmp_path / "logs", roll_seconds=3600).open()
        other.close()
        # the live process's row was not rolled by the other one
        assert not (tmp_path / "logs" / "decisions").exists() or not list(
            (tmp_path / "logs" / "decisions").glob(f"part-{live.name}-*")
        )
        assert os.path.exists(live.spool_dir)
    finally:
        live.close()
    assert pd.read_parquet(tmp_path / "logs" / "decisions")["event_id"].tolist() == ["live-1"]


def test_erase_customer_from_spool_and_parquet(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "logs", roll_seconds=3600).open()
    try:
        log.append_decision(_row("x1", "c-x"))
        log.append_decision(_row("y1", "c-y"))
        log.record_reward("x1", 1.0, late=False)
        log.roll()
        log.append_decision(_row("x2", "c-x"))
        counts = log.erase_customer("c-x")
        assert counts == {"decisions": 2, "rewards": 1}
    finally:
        log.close()
    frame = pd.read_parquet(tmp_path / "logs" / "decisions")
    assert frame["customer_id"].tolist() == ["c-y"]


def test_arrow_roll_equals_the_line_reader(tmp_path: Path) -> None:
    """Rolling through Arrow's JSON reader gives the same tables as the line-by-line
    path; a torn last line falls back to the line reader (which skips it)."""
    from serving.eventlog.roll import arrow_tables
    from training.logs.schema import REWARD_SCHEMA, rows_to_table

    log = EventLog(tmp_path / "logs", roll_seconds=3600).open()
    try:
        for i in range(30):
            shadow = (
                {"shadow_policy": "vw-cb", "shadow_policy_version": "2",
                 "shadow_action_id": "a", "shadow_probability": 0.25}
                if i % 5 == 0
                else {}
            )
            row = _row(
                f"e{i}",
                f"c-{i % 4}",
                timestamp=1.7e9 + i * 0.123456789,
                explored=bool(i % 2),
                request_id=f"r{i}" if i % 3 else None,
                **shadow,
            )
            log.append_decision(row)
            if i % 2:
                log.record_reward(f"e{i}", float(i) / 7, late=i % 7 == 0)
        segment = sorted(log.spool_dir.glob("seg-*.jsonl"))[-1]
        fast = arrow_tables(segment)
        assert fast is not None
        decisions, rewards, bad = read_segment(segment)
        assert bad == 0
        slow_d = rows_to_table([tuple(r.get(n) for n in DECISION_SCHEMA.names)
                                for r in decisions], DECISION_SCHEMA)
        slow_r = rows_to_table([tuple(r.get(n) for n in REWARD_SCHEMA.names)
                                for r in rewards], REWARD_SCHEMA)
        assert fast[0].equals(slow_d) and fast[1].equals(slow_r)
        with open(segment, "ab") as fh:
            fh.write(b'{"_t": "d", "event_id": "torn')
        assert arrow_tables(segment) is None
    finally:
        log.close()
    frame = pd.read_parquet(tmp_path / "logs" / "decisions")
    assert len(frame) == 30  # the torn line is skipped, the rest rolled
