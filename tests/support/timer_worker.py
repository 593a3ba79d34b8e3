"""One OS process claiming trigger timers from a shared timer store, for the exactly-once
tests.

``python timer_worker.py SPEC_JSON`` with ``{"store": "sqlite"|"redis", "path"|"url",
"prefix", "replica", "out", "lease", "until", "die_after_claim"}``: claims due timers until
``until`` (epoch seconds) and appends each fired timer's id to ``out`` (one line each,
flushed) before marking it done; with ``die_after_claim`` it claims once and exits with
``os._exit`` without marking anything done (a replica killed mid-fire).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def open_store(spec: dict):  # type: ignore[no-untyped-def]
    if spec["store"] == "sqlite":
        from serving.state.timers_sqlite import SQLiteTimerStore

        return SQLiteTimerStore(Path(spec["path"]))
    from serving.state.timers_redis import RedisTimerStore

    return RedisTimerStore(spec["url"], prefix=spec["prefix"])


def main(spec: dict) -> None:
    store = open_store(spec)
    with open(spec["out"], "a", encoding="utf-8") as out:
        while time.time() < spec["until"]:
            timers = store.claim(time.time(), spec["replica"], spec["lease"], 20)
            if spec.get("die_after_claim") and timers:
                out.write("".join(f"claimed {t.timer_id}\n" for t in timers))
                out.flush()
                os._exit(9)
            for t in timers:
                out.write(f"{t.timer_id} {t.attempts}\n")
                out.flush()
                store.done(t)
            if not timers:
                time.sleep(0.005)
    store.close()


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
