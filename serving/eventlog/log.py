"""The durable decision and reward log.

Write path (per process): every answered decision is one JSON line appended with a
single ``write(2)`` to the process's current spool segment (``O_APPEND``) before the
answer is sent — the record is in the operating system's page cache, so killing the
process loses nothing it answered (about 10 µs, against 100+ µs for a SQLite commit on
this machine). A background thread ``fsync``s the segment every ``flush_ms`` (≤ 200 ms):
the group commit that bounds what a power loss can take. Every ``roll_seconds`` (and on
close / SIGTERM) the segment is rotated and rolled into Parquet by a temporary file and
an atomic rename, then deleted.

Several replicas: each process owns a spool directory ``logs/spool/<host>-<pid>-<rand>/``
and holds an exclusive ``flock`` on ``logs/spool/<same>.lock`` for its life. On start a
process rolls every spool whose lock it can take (its owner died: kill -9, OOM), so a
crash is recovered by the next process to start. What must be shared by every replica
lives in the shared log index (:class:`serving.state.ports.LogIndex`: the SQLite database
``logs/index.db`` by default, PostgreSQL with ``MAESTRO_STATE_URL``): the reward index
(first reward per event id wins, one ``INSERT ... ON CONFLICT``) and the answers given to
``request_id``s (a retried request gets the same answer from any replica); see
:mod:`serving.eventlog.shared_index` for how a reward claimed by a process killed before
writing it is released.

Parquet datasets: ``$MAESTRO_HOME/logs/decisions/`` and ``$MAESTRO_HOME/logs/rewards/``,
one row per :class:`~training.logs.records.DecisionRecord` and
:class:`~training.logs.records.RewardRecord` (their columns and meanings are documented
there, the schema in :mod:`training.logs.schema`).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from serving.errors import EventLogError
from serving.eventlog.shared_index import sqlite_index_opener
from serving.state.ports import LogIndex, LogIndexOpener
from training.logs.location import LogLocation
from training.logs.records import DecisionRecord, RewardRecord
from training.logs.schema import CUSTOMER_ID, EVENT_ID

logger = logging.getLogger(__name__)

REQUEST_TTL_SECONDS = 24 * 3600.0
_SEGMENT_GLOB = "seg-*.jsonl"


def dumps(value: Any) -> str:
    """Compact JSON for the logged feature/context/action columns (orjson: several times
    faster than ``json`` on the hot path; a non-finite float, which request validation
    already rejects, would be written as ``null``)."""
    return orjson.dumps(value).decode()


@dataclass(frozen=True, slots=True)
class RewardOutcome:
    accepted: bool
    duplicate: bool


def _segment_number(path: Path) -> int:
    return int(path.stem.split("-", 1)[1])


class EventLog:
    """One process's durable log (see the module docstring)."""

    def __init__(
        self,
        logs_dir: Path | str,
        *,
        flush_ms: float = 200.0,
        roll_seconds: float = 10.0,
        reward_mode: str = "first",
        index: LogIndexOpener | None = None,
        dataset: str | LogLocation | None = None,
    ) -> None:
        self.logs_dir = Path(logs_dir)
        #: where segments roll to: ``logs_dir`` itself, or the shared dataset named by a
        #: path or URI (:mod:`training.logs.location`); the spool stays under ``logs_dir``
        self.dataset = LogLocation.of(self.logs_dir if dataset is None else dataset)
        self.spool_root = self.logs_dir / "spool"
        #: the datasets' directories when they are on a local or mounted filesystem
        self.decisions_dir = Path(self.dataset.directory("decisions"))
        self.rewards_dir = Path(self.dataset.directory("rewards"))
        self.flush_seconds = flush_ms / 1000.0
        self.roll_seconds = roll_seconds
        self.reward_mode = reward_mode
        self._open_index = index if index is not None else sqlite_index_opener(self.logs_dir)
        self.name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.spool_dir = self.spool_root / self.name
        replica = b',"replica":' + orjson.dumps(self.name)
        self._tails: dict[type, bytes] = {
            DecisionRecord: replica + b',"_t":"d"}\n',
            RewardRecord: replica + b',"_t":"r"}\n',
        }
        self._lock = threading.Lock()  # the current segment (hot path)
        self._roll_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._fd: int | None = None
        self._segment = 0
        self._index: LogIndex | None = None
        self._lock_fd: int | None = None
        self.last_sync = time.time()
        self.last_roll = time.time()
        self._dirty_since: float | None = None
        #: records of erased customers dropped while rolling (serving.eventlog.tombstones)
        self.erased_at_roll: dict[str, int] = {"decisions": 0, "rewards": 0}

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> EventLog:
        """Recover orphaned spools, open ours, start the group-commit and roll threads."""
        self.spool_root.mkdir(parents=True, exist_ok=True)
        self.dataset.ensure()
        self._lock_fd = os.open(
            self.spool_root / f"{self.name}.lock", os.O_RDWR | os.O_CREAT, 0o600
        )
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.spool_dir.mkdir()
        self.recover()
        self._index = self._open_index(self.name)
        self._fd = self._open_segment(1)
        for target, period in (
            (self._sync_loop, self.flush_seconds),
            (self._roll_loop, self.roll_seconds),
        ):
            t = threading.Thread(
                target=target, args=(period,), daemon=True, name=f"eventlog{target.__name__}"
            )
            t.start()
            self._threads.append(t)
        return self

    def _open_segment(self, number: int) -> int:
        self._segment = number
        path = self.spool_dir / f"seg-{number:09d}.jsonl"
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def close(self) -> None:
        """Stop the threads, roll everything to Parquet, delete our spool (SIGTERM path)."""
        if self._fd is None:
            return
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)
        self._threads.clear()
        self.roll(final=True)
        if self._index is not None:
            self._index.forget_requests_before(time.time() - REQUEST_TTL_SECONDS)
            self._index.close()
            self._index = None
        shutil.rmtree(self.spool_dir, ignore_errors=True)
        if self._lock_fd is not None:
            (self.spool_root / f"{self.name}.lock").unlink(missing_ok=True)
            os.close(self._lock_fd)
            self._lock_fd = None

    def recover(self, spool_root: Path | None = None) -> int:
        """Roll every spool whose owner is gone (under ``spool_root``: ours, or a dead
        node's, ``maestro recover``); return the number of records recovered."""
        root = self.spool_root if spool_root is None else Path(spool_root)
        names = {p.stem for p in root.glob("*.lock")} | {
            p.name for p in root.iterdir() if p.is_dir()
        }
        recovered = sum(self.recover_spool(root, name) for name in sorted(names - {self.name}))
        if recovered:
            logger.warning("event log: recovered %d records from crashed processes", recovered)
        return recovered

    def recover_spool(self, root: Path, name: str) -> int:
        """Roll the spool ``root/name`` unless a live process holds its lock; its claims
        never written are released (the client's retry must count)."""
        lock_path = root / f"{name}.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # a live process owns it
            spool, recovered = root / name, 0
            with self.index_session() as claims:
                for seg in sorted(spool.glob(_SEGMENT_GLOB)) if spool.exists() else []:
                    recovered += self._roll_file(seg, name, claims)
                claims.release(name)
            shutil.rmtree(spool, ignore_errors=True)
            lock_path.unlink(missing_ok=True)
            return recovered
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def index_session(self) -> Iterator[LogIndex]:
        """The shared index: ours when open, else one opened for this recovery or erasure."""
        if self._index is not None:
            yield self._index
            return
        index = self._open_index(self.name)
        try:
            yield index
        finally:
            index.close()

    def _roll_file(self, seg: Path, spool_name: str, claims: LogIndex) -> int:
        from serving.eventlog.roll import roll_segment

        part = f"{spool_name}-{_segment_number(seg):09d}"
        erasures = claims.erasures()
        rolled = roll_segment(seg, self.dataset, part, erasures, self.erased_at_roll)
        claims.confirm(rolled.counted_rewards, spool_name)  # before the segment goes
        seg.unlink(missing_ok=True)
        return rolled.records

    # ------------------------------------------------------------------ writing
    def _line(self, record: DecisionRecord | RewardRecord) -> bytes:
        """The record's spool line: orjson serializes the slots dataclass natively (field
        order, flags as JSON booleans); ``replica``, every record's last field, is cut
        off and replaced by this log's name, followed by the record type ``_t``."""
        raw = orjson.dumps(record)
        return raw[: raw.rfind(b',"replica":')] + self._tails[type(record)]

    def _append(self, line: bytes) -> None:
        with self._lock:
            fd = self._fd
            if fd is None:
                raise EventLogError("the event log is closed")
            try:
                written = os.write(fd, line)
            except OSError as exc:
                raise EventLogError(f"cannot write the event log: {exc}") from exc
        if written != len(line):
            raise EventLogError("short write to the event log")
        if self._dirty_since is None:
            self._dirty_since = time.time()

    def append_decision(self, record: DecisionRecord) -> None:
        """Log one decision before answering (its ``replica`` is this log's name): the
        line is :meth:`_line`'s, built inline (one call less on every ``/decide``)."""
        raw = orjson.dumps(record)
        self._append(raw[: raw.rfind(b',"replica":')] + self._tails[DecisionRecord])

    def _shared(self) -> LogIndex:
        if self._index is None:
            raise EventLogError("the event log is closed")
        return self._index

    def remember_request(self, request_key: str, response: str) -> None:
        """Keep the answer given to a request id (shared by replicas, kept 24 h)."""
        self._shared().remember_request(request_key, response, time.time())

    def find_request(self, request_key: str) -> str | None:
        """The answer already given to ``request_key`` by any replica, if any."""
        return self._shared().find_request(request_key)

    def record_reward(self, event_id: str, reward: float, late: bool, source: str = "reward",
                      attribution: str | None = None) -> RewardOutcome:
        """Log a reward; first one per event id wins (``sum`` mode: all count), shared by
        every replica, whatever its ``source`` (``/reward`` or an outcome's share, whose
        ``attribution`` rule is logged with it). Late rewards are logged with ``late`` and
        never counted."""
        duplicate = False
        now = time.time()
        if not late:
            duplicate = self._claim_reward(event_id, reward, now)
        counted = not late and (not duplicate or self.reward_mode == "sum")
        record = RewardRecord(event_id, reward, now, counted, duplicate, late, source, attribution)
        self._append(self._line(record))
        return RewardOutcome(accepted=counted, duplicate=duplicate)

    def first_sighting(self, key: str) -> bool:
        """Whether ``key`` is claimed here for the first time by any replica (an outcome
        event's identity: a retried post is turned into rewards once)."""
        count, _ = self._shared().claim(key, 0.0, time.time(), "first")
        return count == 1

    def _claim_reward(self, event_id: str, reward: float, now: float) -> bool:
        """Claim the reward in the shared index; ``True`` when another came first. A first
        claim by a replica that died before writing it is released by recovering that
        replica's spool now, and claimed again."""
        index = self._shared()
        count, claimant = index.claim(event_id, reward, now, self.reward_mode)
        if count > 1 and claimant not in (None, self.name) and self._is_dead(claimant):
            self.recover()
            if not index.is_claimed(event_id):
                count, _ = index.claim(event_id, reward, now, self.reward_mode)
        return count > 1

    def _is_dead(self, replica: str) -> bool:
        """Whether ``replica``'s spool lock is free (its process is gone, not recovered)."""
        try:
            fd = os.open(self.spool_root / f"{replica}.lock", os.O_RDWR)
        except OSError:
            return False  # closed cleanly or already recovered
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)
        return True

    # ------------------------------------------------------------------ durability
    def sync(self) -> None:
        """Group commit: ``fsync`` the current segment now."""
        dirty = self._dirty_since
        with self._lock:
            fd = self._fd
            if fd is None:
                return
            fd = os.dup(fd)  # fsync outside the lock, on a descriptor a roll cannot close
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if dirty is not None and self._dirty_since == dirty:
            self._dirty_since = None
        self.last_sync = time.time()

    def roll(self, final: bool = False) -> int:
        """Rotate the segment and roll every closed segment into Parquet; return records."""
        with self._roll_lock:
            with self._lock:
                old = self._fd
                if old is None:
                    return 0
                self._fd = None if final else self._open_segment(self._segment + 1)
            os.fsync(old)  # outside the hot-path lock
            os.close(old)
            if final:
                self._dirty_since = None
            current = self._segment
            rolled = 0
            for seg in sorted(self.spool_dir.glob(_SEGMENT_GLOB)):
                if not final and _segment_number(seg) == current:
                    continue
                if seg.stat().st_size == 0:
                    seg.unlink(missing_ok=True)
                    continue
                rolled += self._roll_file(seg, self.name, self._shared())
            self.last_roll = time.time()
            return rolled

    def unsynced_seconds(self) -> float:
        """Age of the oldest record not yet group-committed (0 when all are on disk)."""
        dirty = self._dirty_since
        return 0.0 if dirty is None else max(0.0, time.time() - dirty)

    def _sync_loop(self, period: float) -> None:
        while not self._stop.wait(period):
            try:
                self.sync()
            except Exception:  # keep committing; the next tick retries
                logger.exception("event log: group commit failed")

    def _roll_loop(self, period: float) -> None:
        # rolling is background work: at the lowest CPU priority (Linux schedules threads
        # by their own nice value), a roll during overload cannot take the core from
        # the thread answering requests (a 100-action spool of 10 s is ~80 MB of JSON)
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        while not self._stop.wait(period):
            try:
                self.roll()
            except Exception:
                logger.exception("event log: roll to Parquet failed")

    # ------------------------------------------------------------------ erasure
    def erase_customer(self, customer_id: str) -> dict[str, int]:
        """Delete a customer's decisions, and the rewards of those decisions, from every
        Parquet part (our spool is rolled first; a tombstone makes other replicas' spools
        drop them when rolled: :mod:`serving.eventlog.tombstones`); return counts."""
        import pyarrow.compute as pc

        from serving.eventlog.roll import rewrite_without
        from serving.eventlog.tombstones import record_erasure

        # first: every replica's later roll (live, final, recovery) drops these rows too
        with self.index_session() as index:
            record_erasure(index, customer_id)
        before = dict(self.erased_at_roll)
        self.roll()
        event_ids: set[str] = set()
        for path in self.dataset.parts("decisions"):
            with contextlib.suppress(OSError):
                table = self.dataset.read(path, columns=[EVENT_ID, CUSTOMER_ID])
                hits = table.filter(pc.equal(table[CUSTOMER_ID], customer_id))
                event_ids.update(hits[EVENT_ID].to_pylist())
        decisions = rewrite_without(self.dataset, "decisions", CUSTOMER_ID, [customer_id])
        rewards = rewrite_without(self.dataset, "rewards", EVENT_ID, event_ids)
        spool = {k: self.erased_at_roll[k] - before[k] for k in before}
        return {"decisions": decisions + spool["decisions"], "rewards": rewards + spool["rewards"]}
