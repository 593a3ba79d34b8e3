"""Two worker OS processes on one outbox (a SQLite file; a real redis-server) deliver every
request to a real webhook receiver exactly once between them, each doing part of the work."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from webhook_receiver import WebhookReceiver

from serving.delivery.ports import DeliveryRequest

SUPPORT = Path(__file__).resolve().parent.parent / "support"
ROOT = SUPPORT.parent.parent
N = 300


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_two_processes_deliver_each_request_once(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "sqlite":
        from serving.state.outbox_sqlite import SQLiteOutbox

        where = str(tmp_path / "deliveries.db")
        box = SQLiteOutbox(Path(where))
    else:
        from serving.state.outbox_redis import RedisOutbox

        where = f"redis://127.0.0.1:{request.getfixturevalue('redis_server')}/5"
        box = RedisOutbox(where, prefix=f"proc{time.time_ns()}:")
    receiver = WebhookReceiver().start()
    stop = tmp_path / "stop"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{SUPPORT}"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(SUPPORT / "delivery_worker_proc.py"), kind, where,
             getattr(box, "prefix", ""), receiver.url, "secret-two-procs", str(stop)],
            stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        for i in range(N):
            box.enqueue(DeliveryRequest(f"id-{i:04d}", "t", "hook", f"c{i % 50}", "default",
                                        {"event_id": f"id-{i:04d}"}, time.time()))
            if i % 20 == 0:
                time.sleep(0.01)  # arriving over time, as triggers fire
        receiver.wait_for(N, timeout=60)
        time.sleep(0.5)  # nothing arrives twice late
    finally:
        stop.touch()
        outs = [p.communicate(timeout=30)[0].split() for p in procs]
        receiver.stop()
    keys = receiver.delivered_keys()
    assert len(keys) == N and len(set(keys)) == N
    per_process = [int(o[-1]) for o in outs]
    assert sum(per_process) == N and min(per_process) > 0, per_process
    assert box.counts()["delivered"] == N
    box.close()
