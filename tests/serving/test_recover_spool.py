"""``maestro recover SPOOL_DIR``: a replica on another node is killed (SIGKILL) with
decisions and rewards in its spool; its node's spool directory is recovered from here into
this workspace's logs, the claims it never wrote are released (the retry counts), the
reward it wrote still counts once. Shared state on the session's real PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd

from serving.eventlog.log import EventLog
from serving.settings import Settings
from serving.state.select import log_index_opener

ROOT = Path(__file__).resolve().parents[2]


def _dead_node(node_home: Path, url: str) -> None:
    """A replica on the other node: two decisions, a written reward for the first, a
    claimed-but-unwritten reward for the second, then SIGKILL."""
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from serving.eventlog.log import EventLog
        from serving.settings import Settings
        from serving.state.select import log_index_opener
        from test_event_log import _row
        settings = Settings(home={str(node_home)!r}, state_url={url!r})
        log = EventLog(settings.logs_dir, index=log_index_opener(settings),
                       roll_seconds=3600).open()
        log.append_decision(_row("e-written", customer="c-1"))
        log.append_decision(_row("e-unwritten", customer="c-2"))
        log.record_reward("e-written", 1.0, late=False)
        def die(line):
            os.kill(os.getpid(), signal.SIGKILL)
        log._append = die
        log.record_reward("e-unwritten", 1.0, late=False)
    """)
    proc = subprocess.run([sys.executable, "-c", script], timeout=120)
    assert proc.returncode == -signal.SIGKILL


def _maestro(home: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MAESTRO_HOME": str(home), "MAESTRO_STATE_URL": url}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_dead_nodes_spool_is_recovered_from_another_machine(tmp_path: Path, postgres) -> None:
    url = postgres.database()
    node, home = tmp_path / "node-b", tmp_path / "home"
    (home / "logs").mkdir(parents=True)
    _dead_node(node, url)
    spool = node / "logs" / "spool"
    done = _maestro(home, url, "recover", str(spool))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("maestro: recovered 3 record(s) from 1 spool(s)")
    assert not any(spool.glob("*/seg-*.jsonl"))  # rolled, then deleted
    decisions = pd.read_parquet(home / "logs" / "decisions")
    assert sorted(decisions["event_id"]) == ["e-unwritten", "e-written"]
    settings = Settings(home=home, state_url=url)
    live = EventLog(settings.logs_dir, index=log_index_opener(settings), roll_seconds=3600)
    live.open()
    retried = live.record_reward("e-unwritten", 1.0, late=False)  # the client's retry
    again = live.record_reward("e-written", 1.0, late=False)
    live.close()
    assert retried.accepted and not retried.duplicate
    assert again.duplicate
    rewards = pd.read_parquet(home / "logs" / "rewards")
    counted = rewards[rewards["counted"]]["event_id"].value_counts().to_dict()
    assert counted == {"e-written": 1, "e-unwritten": 1}
    done = _maestro(home, url, "recover", str(spool))  # twice: nothing more
    assert done.returncode == 0 and "recovered 0 record(s)" in done.stdout


def test_recover_refuses_a_missing_directory_in_one_line(tmp_path: Path, postgres) -> None:
    (tmp_path / "home" / "logs").mkdir(parents=True)
    done = _maestro(tmp_path / "home", postgres.database(), "recover", str(tmp_path / "nope"))
    assert done.returncode == 2
    assert done.stderr == f"maestro: error: SPOOL_DIR {tmp_path / 'nope'} is not a directory\n"
