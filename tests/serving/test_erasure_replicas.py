"""Erasure reaches every replica's spool: a tombstone in the shared index makes other live
replicas (and a crashed one's recovery) drop the erased customer's decisions when they
roll, while decisions made after the erasure are kept (real files in tmp_path)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd

from serving.eventlog.log import EventLog
from serving.eventlog.shared_index import sqlite_index_opener
from serving.eventlog.tombstones import customer_hash, drop_erased

HERE = Path(__file__).parent
ROOT = HERE.parents[1]


def _row(event_id: str, customer: str) -> dict:
    sys.path.insert(0, str(HERE))
    from test_event_log import _row as row

    return row(event_id, customer)


def test_erasure_through_one_replica_reaches_another_live_replicas_spool(
    tmp_path: Path,
) -> None:
    a = EventLog(tmp_path / "logs", roll_seconds=3600).open()
    b = EventLog(tmp_path / "logs", roll_seconds=3600).open()
    try:
        b.append_decision(_row("b-x1", "c-x"))  # waits in b's spool, not yet in Parquet
        b.record_reward("b-x1", 1.0, late=False)
        b.append_decision(_row("b-y1", "c-y"))
        a.append_decision(_row("a-x1", "c-x"))
        counts = a.erase_customer("c-x")  # the DELETE reached replica a only
        assert counts["decisions"] == 1
        time.sleep(0.01)
        b.append_decision(_row("b-x2", "c-x"))  # the customer came back after the erasure
        b.roll()
    finally:
        a.close()
        b.close()
    decisions = pd.read_parquet(tmp_path / "logs" / "decisions")
    assert sorted(decisions["event_id"]) == ["b-x2", "b-y1"]
    rewards_dir = tmp_path / "logs" / "rewards"
    rewards = pd.read_parquet(rewards_dir) if list(rewards_dir.glob("*.parquet")) else None
    assert rewards is None or "b-x1" not in set(rewards["event_id"])


def test_a_crashed_replicas_spool_is_filtered_when_recovered(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        sys.path.insert(0, {str(HERE)!r})
        from serving.eventlog.log import EventLog
        from test_event_log import _row
        log = EventLog({str(tmp_path / "logs")!r}, roll_seconds=3600).open()
        for i in range(5):
            log.append_decision(_row(f"x{{i}}", "c-x"))
            log.append_decision(_row(f"y{{i}}", "c-y"))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    EventLog(tmp_path / "logs").erase_customer("c-x")  # the dead spool is left alone...
    assert list((tmp_path / "logs" / "spool").glob("*/seg-*.jsonl"))
    EventLog(tmp_path / "logs").recover()  # ...until the next start recovers it, filtered
    frame = pd.read_parquet(tmp_path / "logs" / "decisions")
    assert sorted(frame["event_id"]) == [f"y{i}" for i in range(5)]
    assert not list((tmp_path / "logs" / "spool").glob("*/seg-*.jsonl"))


def test_tombstones_hold_no_customer_id_and_filter_by_time(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "logs")
    log.erase_customer("c-secret")
    erasures = sqlite_index_opener(tmp_path / "logs")("test").erasures()
    assert list(erasures) == [customer_hash("c-secret")]
    assert b"c-secret" not in (tmp_path / "logs" / "index.db").read_bytes()
    at = erasures[customer_hash("c-secret")]
    before = {"event_id": "e1", "customer_id": "c-secret", "timestamp": at - 1}
    after = {"event_id": "e2", "customer_id": "c-secret", "timestamp": at + 1}
    other = {"event_id": "e3", "customer_id": "c-other", "timestamp": at - 1}
    rewards = [{"event_id": "e1"}, {"event_id": "e2"}, {"event_id": "e3"}]
    kept, kept_rewards, n_decisions, n_rewards = drop_erased(
        [before, after, other], rewards, erasures
    )
    assert [r["event_id"] for r in kept] == ["e2", "e3"]
    assert [r["event_id"] for r in kept_rewards] == ["e2", "e3"]
    assert (n_decisions, n_rewards) == (1, 1)
    assert os.path.exists(tmp_path / "logs" / "index.db")
