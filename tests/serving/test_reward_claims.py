"""A process killed between claiming a reward in the shared index and writing it to its
spool must not turn the client's retry into a ``duplicate`` (an acknowledged reward lost);
a reward that was written must still count once. Real processes, real SQLite, SIGKILL."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from serving.eventlog.log import EventLog

ROOT = Path(__file__).resolve().parents[2]


def _die_while_rewarding(logs: Path, event_id: str, *, written: bool) -> None:
    """A replica logs a decision, claims its reward and is killed: before the reward's
    spool line (``written=False``) or just after it (``written=True``)."""
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from serving.eventlog.log import EventLog
        from test_event_log import _row
        log = EventLog({str(logs)!r}, roll_seconds=3600).open()
        log.append_decision(_row({event_id!r}))
        append = log._append
        def die_before_reward(line):
            if b'"_t":"r"' in line and not {written!r}:
                os.kill(os.getpid(), signal.SIGKILL)
            append(line)
        log._append = die_before_reward
        log.record_reward({event_id!r}, 1.0, late=False)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], timeout=120)
    assert proc.returncode == -signal.SIGKILL


def _counted(logs: Path, event_id: str) -> int:
    rewards = pd.read_parquet(logs / "rewards")
    return int(((rewards["event_id"] == event_id) & rewards["counted"]).sum())


@pytest.mark.parametrize("survivor_started", ["after the crash", "before the crash"])
def test_a_claim_never_written_is_released_and_the_retry_counts(
    tmp_path: Path, survivor_started: str
) -> None:
    logs = tmp_path / "logs"
    survivor = None
    if survivor_started == "before the crash":  # another live replica gets the retry
        survivor = EventLog(logs, roll_seconds=3600).open()
    _die_while_rewarding(logs, "e-lost", written=False)
    claim = (
        sqlite3.connect(logs / "index.db")
        .execute("SELECT count, replica FROM reward_index WHERE event_id = 'e-lost'")
        .fetchone()
    )
    if survivor_started == "before the crash":
        assert claim[0] == 1 and claim[1] not in (None, survivor.name)  # claimed, unwritten
    else:
        survivor = EventLog(logs, roll_seconds=3600).open()  # recovers, releases the claim
    outcome = survivor.record_reward("e-lost", 1.0, late=False)
    survivor.close()
    assert outcome.accepted and not outcome.duplicate
    assert _counted(logs, "e-lost") == 1


def test_a_written_reward_still_makes_the_retry_a_duplicate(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    survivor = EventLog(logs, roll_seconds=3600).open()
    _die_while_rewarding(logs, "e-kept", written=True)
    outcome = survivor.record_reward("e-kept", 1.0, late=False)
    survivor.close()
    assert outcome.duplicate and not outcome.accepted
    assert _counted(logs, "e-kept") == 1
    unconfirmed = (
        sqlite3.connect(logs / "index.db")
        .execute("SELECT COUNT(*) FROM reward_index WHERE replica IS NOT NULL")
        .fetchone()[0]
    )
    assert unconfirmed == 0  # rolled to Parquet: every claim confirmed


def test_an_index_written_before_claims_named_replicas_is_upgraded(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    old = sqlite3.connect(logs / "index.db")
    old.execute(
        "CREATE TABLE reward_index (event_id TEXT PRIMARY KEY, reward REAL NOT NULL,"
        " count INTEGER NOT NULL, timestamp REAL NOT NULL)"
    )
    old.execute("INSERT INTO reward_index VALUES ('e-old', 1.0, 1, 0.0)")
    old.commit()
    old.close()
    log = EventLog(logs, roll_seconds=3600).open()
    try:
        assert log.record_reward("e-old", 1.0, late=False).duplicate
        assert log.record_reward("e-new", 1.0, late=False).accepted
    finally:
        log.close()
