"""Event ingestion for :mod:`benchmarks.bench_features`: one process ingests the event mix
(flat out or paced) through :class:`features.event_writer.EventWriter`, while a second
*process* (its own :class:`~features.feast.source.FeastFeatureSource`, as another serving
replica) polls probe events until it reads them: the cross-process visibility.

Where visibility time goes, per probe (both processes stamp ``time.monotonic``, one clock
for the machine): *wait* = from ``ingest`` returning to the start of the first flush that
began after it; *write* = that flush's duration (resolve deferred events, write, commit);
*seen* = from that flush's end to the other process reading the value (its poll period,
0.5 ms, plus its read and its wait for a CPU).
"""

from __future__ import annotations

import bisect
import multiprocessing as mp
import random
import resource
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

#: Seconds between probes (one new probe customer each, ``probe-<run>-<k>``, one ``page_view``).
PROBE_EVERY = 0.01
_MAX_PROBES = 20_000
_GIVE_UP = 5.0

EVENT_MIX = [
    ("page_view", lambda r: {"page": r.choice(["home", "product", "cart", "checkout"])}, 0.6),
    ("cart_updated", lambda r: {"cart_value": round(r.uniform(5, 300), 2)}, 0.15),
    ("message_opened", lambda r: {"channel": r.choice(["email", "push", "sms"])}, 0.1),
    ("message_clicked", lambda r: {"channel": r.choice(["email", "push"])}, 0.05),
    ("purchase", lambda r: {}, 0.04),
    ("complaint_opened", lambda r: {}, 0.02),
    ("invoice_overdue", lambda r: {"days_overdue": r.randrange(1, 60)}, 0.02),
    ("consent_changed", lambda r: {"channel": "sms", "granted": r.random() < 0.5}, 0.02),
]


def pct(samples: list[float] | np.ndarray) -> dict[str, float]:
    """p50/p95/p99/mean in milliseconds of samples in seconds."""
    a = np.asarray(samples, dtype=float) * 1e3
    if a.size == 0:
        return {k: float("nan") for k in ("p50", "p95", "p99", "mean", "max")}
    return {
        "max": float(a.max()),
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "p99": float(np.percentile(a, 99)),
        "mean": float(a.mean()),
    }


def random_event(rng: random.Random, customers: int) -> dict[str, Any]:
    x, acc = rng.random(), 0.0
    chosen = EVENT_MIX[-1]
    for entry in EVENT_MIX:
        acc += entry[2]
        if x <= acc:
            chosen = entry
            break
    return {
        "customer_id": f"c-{rng.randrange(customers):06d}",
        "type": chosen[0],
        "properties": chosen[1](rng),
    }


def _watch(repo: str, run: str, issued: Any, t0: Any, seen: Any, ready: Any, stop: Any) -> None:
    """The other process: reads probe ``k`` until its page shows, stamps when it did."""
    import os

    os.environ.setdefault("FEAST_USAGE", "False")
    from features.errors import FeatureStoreUnavailable
    from features.feast.source import FeastFeatureSource

    source = FeastFeatureSource(repo)
    source.get("probe-warmup")
    ready.set()
    k = 0
    while k < _MAX_PROBES:
        if k >= issued.value:
            if stop.is_set():
                break
            time.sleep(0.0005)
            continue
        cid = f"probe-{run}-{k}"
        try:
            visible = source.get(cid).values["last_page"] == cid
        except FeatureStoreUnavailable:
            visible = False
        now = time.monotonic()
        if visible:
            seen[k] = now
            k += 1
        elif now - t0[k] > _GIVE_UP:
            seen[k] = -1.0  # never seen
            k += 1
        else:
            time.sleep(0.0005)
    source.close()


def bench_ingest(
    repo: Path,
    customers: int,
    seconds: float,
    rate: float | None,
    rng: random.Random,
    flush_interval: float,
) -> dict[str, Any]:
    """Ingest the event mix for ``seconds`` (paced at ``rate``/s, or flat out)."""
    from features.event_writer import EventWriter
    from features.feast.source import FeastFeatureSource

    run = f"{random.getrandbits(32):08x}"  # fresh probe customers: none visible before
    ctx = mp.get_context("spawn")
    issued = ctx.Value("l", 0, lock=False)
    t0 = ctx.Array("d", _MAX_PROBES, lock=False)
    seen = ctx.Array("d", _MAX_PROBES, lock=False)
    ready, stop = ctx.Event(), ctx.Event()
    watcher = ctx.Process(
        target=_watch, args=(str(repo), run, issued, t0, seen, ready, stop), daemon=True
    )
    watcher.start()
    source = FeastFeatureSource(repo)
    writer = EventWriter(source, flush_interval=flush_interval)
    flushes: list[tuple[float, float, int]] = []  # (start, end, rows) of every flush
    flush = writer.flush
    flush_lock = threading.Lock()

    def timed_flush(view: str | None = None, customer_id: str | None = None) -> int:
        start = time.monotonic()
        rows = flush(view, customer_id)
        if view is None:  # the background thread's flushes (not consent write-through)
            with flush_lock:
                flushes.append((start, time.monotonic(), rows))
        return rows

    writer.flush = timed_flush  # type: ignore[method-assign]
    if not ready.wait(120):
        raise SystemExit("the visibility watcher process did not start")
    consent: list[float] = []
    n = failed = probes = 0
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    next_probe = started
    while (now := time.monotonic()) - started < seconds:
        if rate is not None and now < (due := started + n / rate):
            time.sleep(due - now)
        if time.monotonic() >= next_probe and probes < _MAX_PROBES:
            next_probe += PROBE_EVERY
            cid = f"probe-{run}-{probes}"
            writer.ingest({"customer_id": cid, "type": "page_view", "properties": {"page": cid}})
            t0[probes] = time.monotonic()
            probes += 1
            issued.value = probes
        else:
            event = random_event(rng, customers)
            t = time.monotonic()
            try:
                writer.ingest(event)
            except Exception:  # counted: a store read or write past its bound
                failed += 1
            if event["type"] == "consent_changed":
                consent.append(time.monotonic() - t)
        n += 1
    elapsed = time.monotonic() - started
    backlog = len(source.overlay)
    t = time.monotonic()
    writer.close()
    drain = time.monotonic() - t
    end = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = end.ru_utime + end.ru_stime - cpu.ru_utime - cpu.ru_stime
    stop.set()
    watcher.join(_GIVE_UP + 30)
    source.close()
    return {
        "events": n,
        "failed": failed,
        "seconds": elapsed,
        "events_per_s": n / elapsed,
        "pushed_rows": writer.pushed_rows,
        "backlog_at_end": backlog,
        "drain_s": drain,
        "failed_flushes": writer.failed_flushes,
        "cpu_us_per_event": cpu_s / n * 1e6,  # this process (ingest + writer), with the drain
        "consent_ingest": pct(consent),
        **_visibility(list(t0[:probes]), list(seen[:probes]), flushes),
    }


def _visibility(
    t0: list[float], seen: list[float], flushes: list[tuple[float, float, int]]
) -> dict[str, Any]:
    """Visibility per probe and its split into wait / write / seen (see the module)."""
    starts = [f[0] for f in flushes]
    total, wait, write, after = [], [], [], []
    unseen = 0
    for sent, got in zip(t0, seen, strict=True):
        if got <= 0:
            unseen += 1
            continue
        total.append(max(got - sent, 0.0))
        i = bisect.bisect_left(starts, sent)
        if i < len(flushes) and flushes[i][1] <= got + 1e-3:
            wait.append(flushes[i][0] - sent)
            write.append(flushes[i][1] - flushes[i][0])
            after.append(max(got - flushes[i][1], 0.0))
    durations = [f[1] - f[0] for f in flushes]
    rows = [f[2] for f in flushes]
    return {
        "visibility": pct(total),
        "probes": len(total),
        "probes_unseen": unseen,
        "split": {"wait": pct(wait), "write": pct(write), "seen": pct(after)},
        "flushes": len(flushes),
        "flush_ms": pct(durations),
        "rows_per_flush": float(np.mean(rows)) if rows else 0.0,
    }
