# ruff: noqa: E501
"""Items 2, 3 and 4: replays and duplicates, reward timing, corrupt logs — against the
live server's own logs, joined by the real training reader (:mod:`training.data`)."""

from __future__ import annotations

import dataclasses
import random
import shutil
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

pytestmark = pytest.mark.integration
CART = "cart_abandoned"


def _post_many(base: str, headers: dict[str, str], jobs: list[list[dict[str, Any]]], path: str):
    """One thread (client) per job list; each posts its bodies in order; all start together."""
    barrier = threading.Barrier(len(jobs))
    results: list[list[httpx.Response]] = [[] for _ in jobs]

    def run(i: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
            barrier.wait()
            for body in jobs[i]:
                results[i].append(c.post(path, json=body))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _join(srv: Any, now: float | None = None):
    from training.data import load_training_set

    srv.service.log.roll()
    return load_training_set(srv.home / "logs", srv.service.catalog, now or time.time() + 1e6)


def test_same_reward_from_8_concurrent_clients_counts_once(rel_server: Any, figure: Any) -> None:
    srv = rel_server
    rng = random.Random(7)
    events = [
        srv.client.post("/decide", json={"customer_id": "c-all", "decision_point": CART}).json()[
            "event_id"
        ]
        for _ in range(20)
    ]
    jobs = []
    for _ in range(8):
        bodies = [{"event_id": e, "reward": 1.0} for e in events for _ in range(rng.randint(1, 5))]
        rng.shuffle(bodies)
        jobs.append(bodies)
    posts = sum(len(j) for j in jobs)
    results = _post_many(srv.base_url, dict(srv.client.headers), jobs, "/reward")
    firsts: Counter[str] = Counter()
    for per_client in results:
        for r in per_client:
            assert r.status_code == 200, r.text
            if not r.json()["duplicate"]:
                firsts[r.json()["event_id"]] += 1
    assert firsts == Counter({e: 1 for e in events})  # exactly one non-duplicate answer each

    ts = _join(srv)
    rewards = pd.read_parquet(srv.home / "logs" / "rewards")
    mine = rewards[rewards["event_id"].isin(events)]
    assert len(mine) == posts  # every post is in the raw log ...
    assert mine.groupby("event_id")["counted"].sum().to_dict() == {e: 1 for e in events}
    learned = ts.frame[ts.frame["event_id"].isin(events)]  # ... and learned from once
    assert sorted(learned["event_id"]) == sorted(events)
    assert (learned["reward"] == 1.0).all()
    figure("replay.reward_posts", posts)
    figure("replay.events", len(events))
    figure("replay.counted_in_serving", int(mine["counted"].sum()))
    figure("replay.counted_in_training", len(learned))


def test_retried_decide_with_request_id_is_one_decision(rel_server: Any, figure: Any) -> None:
    srv = rel_server
    rng = random.Random(11)
    ids = [f"retry-{i}" for i in range(10)]
    jobs = []
    for _ in range(8):
        bodies = [
            {"customer_id": "c-all", "decision_point": CART, "request_id": rid}
            for rid in ids
            for _ in range(rng.randint(1, 5))
        ]
        rng.shuffle(bodies)
        jobs.append(bodies)
    results = _post_many(srv.base_url, dict(srv.client.headers), jobs, "/decide")
    answers: dict[str, set[bytes]] = {}
    total = 0
    for per_client, bodies in zip(results, jobs, strict=True):
        for r, body in zip(per_client, bodies, strict=True):
            assert r.status_code == 200, r.text
            answers.setdefault(body["request_id"], set()).add(r.content)
            total += 1
    assert all(len(v) == 1 for v in answers.values())  # byte-identical answers per key
    srv.service.log.roll()
    frame = pd.read_parquet(srv.home / "logs" / "decisions")
    logged = frame[frame["request_id"].isin(ids)]
    assert sorted(logged["request_id"]) == sorted(ids)  # logged once each
    figure("replay.decide_retries", total)
    figure("replay.decide_rows_logged", len(logged))


def test_reward_timing_late_rewards_kept_never_learned(rel_server: Any, figure: Any) -> None:
    """A 2 s window on ``cart_abandoned`` (the live service's catalog, swapped for the test)."""
    srv = rel_server
    service = srv.service
    original = service.catalog
    window = 2.0
    point = dataclasses.replace(original[CART], reward_window_hours=window / 3600.0)
    service.catalog = dataclasses.replace(
        original, decision_points={**original.decision_points, CART: point}
    )
    try:
        groups: dict[str, list[str]] = {k: [] for k in ("inside", "just_after", "long_after", "none")}
        started = time.time()
        for i in range(40):
            r = srv.client.post("/decide", json={"customer_id": "c-all", "decision_point": CART})
            groups[list(groups)[i % 4]].append(r.json()["event_id"])
        decided = time.time()
    finally:
        service.catalog = original
    codes: dict[str, Counter[int]] = {k: Counter() for k in groups}
    time.sleep(max(0.0, started + window - 0.6 - time.time()))  # ≥ 0.6 s before any deadline
    assert time.time() < started + window - 0.3
    for e in groups["inside"]:
        codes["inside"][srv.client.post("/reward", json={"event_id": e, "reward": 1.0}).status_code] += 1
    time.sleep(max(0.0, decided + window + 0.05 - time.time()))  # just past every deadline
    for e in groups["just_after"]:
        codes["just_after"][srv.client.post("/reward", json={"event_id": e, "reward": 1.0}).status_code] += 1
    time.sleep(max(0.0, decided + 3 * window - time.time()))
    for e in groups["long_after"]:
        codes["long_after"][srv.client.post("/reward", json={"event_id": e, "reward": 1.0}).status_code] += 1
    assert codes["inside"] == Counter({200: 10})
    assert codes["just_after"] == Counter({409: 10}) and codes["long_after"] == Counter({409: 10})

    ts = _join(srv, now=time.time())
    rewards = pd.read_parquet(srv.home / "logs" / "rewards")
    late_ids = set(groups["just_after"]) | set(groups["long_after"])
    raw_late = rewards[rewards["event_id"].isin(late_ids)]
    assert len(raw_late) == 20 and raw_late["late"].all() and not raw_late["counted"].any()
    learned = ts.frame.set_index("event_id")["reward"]
    assert (learned[groups["inside"]] == 1.0).all()
    defaulted = groups["just_after"] + groups["long_after"] + groups["none"]
    assert (learned[defaulted] == point.default_reward).all()  # late ones: never learned
    figure("timing.window_seconds", window)
    figure("timing.statuses", {k: dict(v) for k, v in codes.items()})
    figure("timing.late_kept_in_raw_log", len(raw_late))
    figure("timing.late_learned", int((learned[list(late_ids)] != point.default_reward).sum()))
    figure("timing.defaulted_equals_unrewarded", len(defaulted))


# ------------------------------------------------------------------------- corrupt logs
def _corrupt_copy(srv: Any, dest: Path) -> dict[str, int]:
    """Copy the live logs, then add one file of each kind of damage; return what was added."""
    import orjson

    srv.service.log.roll()
    for kind in ("decisions", "rewards"):
        shutil.copytree(srv.home / "logs" / kind, dest / kind)
    frame = pd.read_parquet(dest / "decisions")
    good = frame[frame["action_id"].notna()].head(8).copy()
    bad = []
    for p, tag in ((0.0, "p0"), (float("nan"), "pnan"), (1.5, "pbig"), (-0.2, "pneg")):
        row = good.iloc[[len(bad)]].copy()
        row["event_id"] = f"bad-{tag}"
        row["probability"] = p
        bad.append(row)
    row = good.iloc[[4]].copy()  # ranking shorter than the action list
    row["event_id"] = "bad-ranking-short"
    row["probabilities"] = orjson.dumps(orjson.loads(row["probabilities"].iloc[0])[:-1]).decode()
    bad.append(row)
    row = good.iloc[[5]].copy()  # chosen action not in the action list
    row["event_id"] = "bad-ranking-unknown"
    row["action_id"] = "not-an-offered-action"
    bad.append(row)
    row = good.iloc[[6]].copy()
    row["event_id"] = "bad-json"
    row["customer_features"] = "{not json"
    bad.append(row)
    pd.concat(bad).to_parquet(dest / "decisions" / "part-zz-corrupt.parquet")
    orphans = pd.DataFrame(
        {
            "event_id": [f"orphan-{i}" for i in range(5)],
            "reward": [1.0] * 5,
            "timestamp": pd.Timestamp.now(tz="UTC"),
            "counted": True,
            "duplicate": False,
            "late": False,
            "replica": "test",
        }
    )
    orphans.to_parquet(dest / "rewards" / "part-zz-orphans.parquet")
    source = sorted((dest / "decisions").glob("part-*.parquet"))[0]
    blob = source.read_bytes()
    (dest / "decisions" / "part-zz-truncated.parquet").write_bytes(blob[: len(blob) // 2])
    return {"bad_rows": len(bad), "orphans": len(orphans), "truncated_files": 1}


def test_corrupt_logs_are_skipped_and_counted(rel_server: Any, tmp_path: Path, figure: Any) -> None:
    from training.data import load_training_set

    # some traffic of its own, so the test stands alone
    for i in range(30):
        rel_server.client.post("/decide", json={"customer_id": f"c-{i:06d}", "decision_point": CART})
    added = _corrupt_copy(rel_server, tmp_path / "logs")
    ts = load_training_set(tmp_path / "logs", rel_server.service.catalog, time.time() + 1e6)
    report = ts.report
    assert len(report.files_skipped) == added["truncated_files"]
    assert report.skipped["bad_probability"] == 4
    assert report.skipped["ranking_mismatch"] == 2
    assert report.skipped["corrupt_json"] == 1
    assert report.orphan_rewards == added["orphans"]
    assert not ts.frame["event_id"].str.startswith(("bad-", "orphan-")).any()
    assert len(ts) > 0  # training still has data, and trains on it
    from policies.registry import make_policy

    policy = make_policy("linucb")
    policy.learn(ts.batch)
    figure("corrupt.report", report.as_dict())


def test_reward_whose_counted_row_died_with_the_process_is_learned_once(
    rel_server: Any, tmp_path: Path, figure: Any
) -> None:
    """kill -9 between the reward index (SQLite) and the log append: the client's retry,
    answered ``duplicate: true``, is the only row left; training learns it once."""
    from training.data import load_training_set

    srv = rel_server
    events = [srv.client.post("/decide", json={"customer_id": "c-all", "decision_point": CART}).json()["event_id"] for _ in range(3)]
    for e in events:
        for _ in range(2):
            assert srv.client.post("/reward", json={"event_id": e, "reward": 1.0}).status_code == 200
    srv.service.log.roll()
    for kind in ("decisions", "rewards"):
        shutil.copytree(srv.home / "logs" / kind, tmp_path / kind)
    rewards = pd.read_parquet(tmp_path / "rewards")
    lost = events[0]  # its counted row "never reached the log"
    kept = rewards[~((rewards["event_id"] == lost) & rewards["counted"])]
    for part in (tmp_path / "rewards").glob("*.parquet"):
        part.unlink()
    kept.to_parquet(tmp_path / "rewards" / "part-0.parquet")
    ts = load_training_set(tmp_path, srv.service.catalog, time.time() + 1e6)
    learned = ts.frame.set_index("event_id")["reward"]
    assert all(learned[e] == 1.0 for e in events)
    assert (ts.frame["event_id"] == lost).sum() == 1
    figure("replay.retry_only_reward_learned", 1)
