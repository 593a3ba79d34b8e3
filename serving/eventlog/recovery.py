"""``maestro recover SPOOL_DIR``: a dead node's spool, rolled into the workspace's logs from
any machine that can read it (the node's disk, mounted or copied).

``SPOOL_DIR`` is a node's spool root (``$MAESTRO_HOME/logs/spool``, one directory per
replica that ran there) or one replica's spool directory. Each spool whose lock no live
process holds is rolled to Parquet exactly as a restarting replica would roll it: erasure
tombstones applied, its counted rewards confirmed in the shared index and its claims that
were never written released (so the client's retry counts), then deleted. Rolling twice
is harmless: a rolled segment is gone, and Parquet part names carry the spool's name and
segment number, so a recovery cannot collide with a live replica's files.
"""

from __future__ import annotations

from pathlib import Path

from serving.eventlog.log import EventLog
from serving.settings import Settings
from serving.state.select import log_index_opener

_SEGMENTS = "seg-*.jsonl"


def recover_command(settings: Settings, spool_dir: Path) -> str:
    """Recover ``spool_dir`` into the workspace's logs; the one line to print."""
    spool_dir = Path(spool_dir).absolute()
    if not spool_dir.is_dir():
        raise ValueError(f"SPOOL_DIR {spool_dir} is not a directory")
    log = EventLog(settings.logs_dir, reward_mode=settings.reward_mode,
                   index=log_index_opener(settings), dataset=settings.log_location)
    log.dataset.ensure()
    if any(spool_dir.glob(_SEGMENTS)):  # one replica's spool
        records, spools = log.recover_spool(spool_dir.parent, spool_dir.name), 1
    else:
        spools = sum(1 for p in spool_dir.iterdir() if p.is_dir())
        records = log.recover(spool_dir)
    return (
        f"maestro: recovered {records} record(s) from {spools} spool(s) in {spool_dir} "
        f"into {settings.log_location}"
    )
