"""What the shared state costs per call, embedded (SQLite under the workspace) against
networked (PostgreSQL on loopback): the calls ``/reward`` makes (one reward claim plus the
spool append, :meth:`serving.eventlog.log.EventLog.record_reward`) and those a ``/decide``
with a ``request_id`` makes (one lookup, one remembered answer). Each is one round trip
to PostgreSQL; ``/decide`` without a request id touches neither store.

    MAESTRO_STATE_URL=postgresql://... .venv/bin/python -m benchmarks.bench_shared_state [-n 3000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def _percentiles(fn: Callable[[int], object], n: int) -> tuple[float, float]:
    """p50 and p99 of ``fn(i)`` in microseconds, after 200 warm-up calls."""
    for i in range(200):
        fn(-1 - i)
    times = np.empty(n)
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        times[i] = time.perf_counter() - start
    return float(np.percentile(times, 50) * 1e6), float(np.percentile(times, 99) * 1e6)


def measure(state_url: str | None, n: int) -> dict[str, tuple[float, float]]:
    from serving.eventlog.log import EventLog
    from serving.settings import Settings
    from serving.state.select import log_index_opener

    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), state_url=state_url)
        log = EventLog(settings.logs_dir, index=log_index_opener(settings), roll_seconds=3600)
        log.open()
        tag = os.urandom(4).hex()
        try:
            return {
                "reward": _percentiles(
                    lambda i: log.record_reward(f"{tag}-e{i}", 1.0, late=False), n
                ),
                "find_request": _percentiles(lambda i: log.find_request(f"{tag}-r{i}"), n),
                "remember_request": _percentiles(
                    lambda i: log.remember_request(f"{tag}-r{i}", "{}"), n
                ),
            }
        finally:
            log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=3000)
    args = parser.parse_args()
    url = os.environ.get("MAESTRO_STATE_URL")
    for name, state in (("sqlite", None), ("postgresql", url)):
        if name == "postgresql" and not url:
            print("postgresql: set MAESTRO_STATE_URL to measure it")
            continue
        for call, (p50, p99) in measure(state, args.n).items():
            print(f"{name:10s} {call:17s} p50 {p50:8.1f} us  p99 {p99:8.1f} us")


if __name__ == "__main__":
    main()
