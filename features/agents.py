"""Contact-centre agents from Feast: :class:`AgentSource`, the in-process roster
``/decide`` routes among (the roster itself, and how it changes:
:mod:`features.agent_roster`).
Past interactions with a customer are the customer feature ``last_agent_id`` (view
``customer_service``), which :func:`policies.routing.with_continuity` turns into the
``continuity`` action feature.

:class:`AgentSource` reads every agent of the roster with one Feast
``get_online_features`` call (SQLite or Redis alike) and caches the result as ready-made
:class:`RosterAgent` records (:func:`policies.routing.agent_candidates` makes them
``agent`` actions: features know nothing of decisions). **Staleness bound**: the cache
is re-read every ``max_age`` seconds (default 1 s) by a background thread, so no request
waits for the read (a source without the thread re-reads on the first ``agents()`` after
``max_age``). An agent's load
is the store's load plus the cases routed to it after the store's row was written, by
this process or any other serving the workspace (the routed-case ledger,
:mod:`features.routed_cases`): between reads, each case this process routes counts at
once; on each read the process appends its cases to the ledger and counts everyone's. So
a burst of decisions cannot fill an agent past capacity before the platform reports the
new load, and another replica's cases count here within two reads. If a re-read fails the
last roster is served, for at most ``max_stale`` seconds (default 60 s), after which
:class:`FeatureStoreUnavailable` (HTTP 503) is raised. No ``POST /events`` type carries
agent load in ``CONTRACT.md``, so load reaches Maestro only through Feast.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from features.agent_roster import agents_parquet
from features.errors import FeatureStoreUnavailable, WorkspaceError
from features.routed_cases import KEEP_SECONDS, RoutedCaseLedger, open_ledger
from features.schema import AGENT_FEATURES, AGENT_JOIN_KEY, AGENT_VIEW

if TYPE_CHECKING:
    from feast.online_response import OnlineResponse

logger = logging.getLogger(__name__)

#: the channel of every roster agent (``CONTRACT.md``)
AGENT_CHANNEL = "agent"
#: routed cases a process keeps while it has no ledger to share them through
LOCAL_CASES = 100_000

def _features(values: Mapping[str, Any]) -> dict[str, Any]:
    """The ``agent`` action features of one roster row, as ``CONTRACT.md`` shapes
    caller-sent ones (``continuity`` preset to 0; an unavailable agent has no capacity)."""
    return {
        "skills": str(values.get("skills") or ""),
        "level": int(values.get("level") or 0),
        "languages": str(values.get("languages") or ""),
        "load": int(values.get("load") or 0),
        "capacity": int(values.get("capacity") or 0) if values.get("available") else 0,
        "continuity": 0,
    }


@dataclass(frozen=True, slots=True)
class RosterAgent:
    """One agent of the roster as routing reads it: its id, the channel ``agent`` and its
    action features (skills, level, languages, load, capacity, continuity), in the shape
    ``CONTRACT.md`` gives a caller-sent agent."""

    id: str
    features: Mapping[str, Any]
    channel: str = AGENT_CHANNEL


def _agent(agent: str, base: Mapping[str, Any], extra_load: int) -> RosterAgent:
    """The record of an agent with ``extra_load`` more cases than its row says
    (:func:`_features` gives only valid values)."""
    features = dict(base)
    features["load"] += extra_load
    return RosterAgent(agent, features)


class AgentSource:
    """The agents of the workspace's Feast repo, as :class:`RosterAgent` s, cached in process
    (staleness bound: see the module docstring)."""

    def __init__(
        self,
        repo_path: Path | str,
        *,
        max_age: float = 1.0,
        max_stale: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        ledger: RoutedCaseLedger | None = None,
        shared_counts: bool = True,
    ) -> None:
        """``ledger``: where routed cases are shared (default: the workspace's, see
        :func:`features.routed_cases.open_ledger`); ``shared_counts=False`` counts only
        this process's cases."""
        from feast import FeatureStore

        from features.feast.views import silence_feast_warnings

        silence_feast_warnings()
        self.repo_path = Path(repo_path)
        self.store = FeatureStore(repo_path=str(self.repo_path))
        try:
            self.store.get_feature_view(AGENT_VIEW)
        except Exception as exc:  # Feast raises its own *NotFound types
            raise WorkspaceError(
                f"no agent feature view in {self.repo_path}: run `maestro init`"
            ) from exc
        self.max_age, self.max_stale, self.clock = max_age, max_stale, clock
        self._refs = [f"{AGENT_VIEW}:{name}" for name in AGENT_FEATURES]
        self._lock = threading.Lock()
        self._extra: dict[str, int] = {}  # cases counted on top of the store's load
        #: cases routed here and not yet in the ledger (all of them without one)
        self._cases: list[tuple[str, float]] = []
        self.ledger = ledger
        if ledger is None and shared_counts:
            try:
                self.ledger = open_ledger(self.store.config, self.repo_path)
            except Exception as exc:  # a read-only workspace: count this process's cases
                logger.warning("routed-case ledger unavailable (%s): counting locally", exc)
        self._agents: tuple[RosterAgent, ...] = ()
        self._base: dict[str, dict[str, Any]] = {}  # each agent's features, as the store says
        self._index: dict[str, int] = {}  # each agent's place in ``_agents``
        self._ids: tuple[str, ...] = ()
        self._ids_signature: tuple[int, int, int] | None = None
        self._checked = -math.inf  # last read attempt
        self._read = -math.inf  # last successful read
        self._reading = threading.Lock()  # one read at a time; held without ``_lock``
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.reads = 0

    def start(self) -> AgentSource:
        """Re-read the roster every ``max_age`` seconds in a background thread, so no
        request waits for a read (without it, the first ``agents()`` after ``max_age``
        reads)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="maestro-agents", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(max(self.max_age, 0.05)):
            try:
                self.refresh()
            except Exception as exc:  # keep serving the last roster; ping() tells
                logger.warning("agent roster read failed: %s", exc)

    def refresh(self) -> None:
        """Read the roster now (skipped while another thread reads it)."""
        self._refresh(self.clock())

    def agents(self) -> tuple[RosterAgent, ...]:
        """Every agent of the roster (unavailable ones with capacity
        0): the store's row at most ``max_age`` seconds old, plus the routed cases."""
        now = self.clock()
        if (self._thread is None or not self.reads) and now - self._checked >= self.max_age:
            self._refresh(now)  # no reader thread, or it has not read yet
        if now - self._read > self.max_stale:
            raise FeatureStoreUnavailable(f"agent roster unreadable for over {self.max_stale:g} s")
        return self._agents

    def assigned(self, agent: str) -> None:
        """Count one more case for ``agent`` (and share it on the next read)."""
        with self._lock:
            i = self._index.get(agent)
            if i is None:
                return
            self._extra[agent] = extra = self._extra.get(agent, 0) + 1
            self._cases.append((agent, time.time()))
            agents = list(self._agents)
            agents[i] = _agent(agent, self._base[agent], extra)
            self._agents = tuple(agents)

    def _roster_ids(self) -> tuple[str, ...]:
        """Who the agents are: the ``agent_id`` column of the offline Parquet, which
        ``maestro init`` writes and every push ``ONLINE_AND_OFFLINE`` appends to (Feast
        cannot list a view's entities from the online store); re-read only when the file
        changes."""
        from core.parquet import read_table

        path = agents_parquet(self.repo_path)
        stat = os.stat(path)
        signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        # a file written in the last seconds may change again within the file system's
        # timestamp granularity (a few ms) without its signature changing: read it again
        fresh = time.time_ns() - stat.st_mtime_ns < 2_000_000_000
        if fresh or signature != self._ids_signature:
            table = read_table(path, columns=[AGENT_JOIN_KEY])
            self._ids = tuple(dict.fromkeys(table.column(AGENT_JOIN_KEY).to_pylist()))
            self._ids_signature = signature
        return self._ids

    def _refresh(self, now: float) -> None:
        if not self._reading.acquire(blocking=False):
            return  # another thread is reading; serve the current roster meanwhile
        try:
            self._checked = now
            try:
                ids = self._roster_ids()
                response = self.store.get_online_features(
                    features=self._refs, entity_rows=[{AGENT_JOIN_KEY: a} for a in ids]
                )
                got = response.to_dict()
            except Exception:  # any store failure: keep the last roster
                return
            base: dict[str, dict[str, Any]] = {}
            for i, agent in enumerate(got.get(AGENT_JOIN_KEY, ())):
                values = {name: got[name][i] for name in AGENT_FEATURES}
                if values["skills"] is not None:  # None: not in the online store
                    base[agent] = _features(values)
            written = _load_times(response)
            since = {a: written.get(a, 0.0) for a in base}
            with self._lock:
                cases, self._cases = self._cases, []
            extra = self._routed_after(cases, since)  # the ledger's IO: without ``_lock``
            with self._lock:
                for agent, at in self._cases:  # routed meanwhile: not in the ledger yet
                    if at > since.get(agent, math.inf):
                        extra[agent] = extra.get(agent, 0) + 1
                self._base, self._extra = base, extra
                self._index = {a: i for i, a in enumerate(base)}
                self._agents = tuple(_agent(a, f, extra.get(a, 0)) for a, f in base.items())
                self._read = now
                self.reads += 1
        finally:
            self._reading.release()

    def _routed_after(
        self, cases: list[tuple[str, float]], since: dict[str, float]
    ) -> dict[str, int]:
        """Per agent, the cases routed after its store row was written (``since``): the
        ledger's, after appending this process's ``cases``; without a ledger (or while it
        fails), this process's own, kept for the next read."""
        if self.ledger is not None:
            try:
                self.ledger.record(cases)
                return self.ledger.counts_after(since)
            except Exception as exc:  # keep them for the next read; count them meanwhile
                logger.warning("routed-case ledger failed (%s): counting locally", exc)
        floor = time.time() - KEEP_SECONDS
        kept = [(a, t) for a, t in cases if t > max(since.get(a, math.inf), floor)]
        kept = kept[-LOCAL_CASES:]
        with self._lock:
            self._cases[:0] = kept
        return dict(Counter(a for a, _ in kept))

    def ping(self) -> bool:
        return self.clock() - self._read <= self.max_stale

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._agents, self._base, self._index = (), {}, {}


def _load_times(response: OnlineResponse) -> dict[str, float]:
    """Per agent of a Feast answer: when its ``load`` was written (epoch seconds, with
    Feast's sub-second part, which ``to_dict`` drops)."""
    names = list(response.proto.metadata.feature_names.val)
    try:
        ids, loads = names.index(AGENT_JOIN_KEY), names.index("load")
    except ValueError:
        return {}
    results = response.proto.results
    out: dict[str, float] = {}
    for value, ts in zip(results[ids].values, results[loads].event_timestamps, strict=True):
        out[value.string_val] = ts.seconds + ts.nanos / 1e9
    return out


def open_agent_source(
    path: Path | str, *, background: bool = True, **kwargs: Any
) -> AgentSource | None:
    """The agent source of a workspace (``$MAESTRO_HOME``) or Feast repo, or ``None`` when
    its registry has no ``agent`` view (a workspace built before the agent roster existed).
    Reads the roster once; with ``background``, re-reads it in a thread
    (:meth:`AgentSource.start`)."""
    repo = Path(path)
    repo = repo if (repo / "feature_store.yaml").exists() else repo / "feature_repo"
    if not agents_parquet(repo).exists():
        return None
    try:
        source = AgentSource(repo, **kwargs)
    except WorkspaceError:
        return None
    # the first read loads Feast's registry: not on a request (503 until the store answers)
    with contextlib.suppress(FeatureStoreUnavailable):
        source.agents()
    return source.start() if background else source
