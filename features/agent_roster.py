"""The contact-centre agent roster in Feast: the synthetic roster ``maestro init``
materialises, and how the platform changes it (:func:`push_agents`).

The roster lives in the Feast feature view ``agent`` (entity ``agent``, join key
``agent_id``; features :data:`features.schema.AGENT_FEATURES`), fed by the offline
Parquet ``data/agents.parquet`` (who the agents are) and the push source ``agent_push``
(``FeatureStore.push``: how the contact-centre platform updates load and availability, and
adds agents; pushed ``ONLINE_AND_OFFLINE``, as :func:`push_agents` does, so a new agent's
id reaches the Parquet too). :class:`features.agents.AgentSource` serves it to ``/decide``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from features.errors import WorkspaceError
from features.feast.internals import clear_online_views, push_online_journaled
from features.schema import AGENT_JOIN_KEY, AGENT_VIEW

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

DEFAULT_AGENTS = 24
#: the generator's tag in the workspace manifest (its original module path: kept, not moved)
AGENT_GENERATOR = "features.agents.generate_agents/v1"
AGENT_PUSH_SOURCE = "agent_push"
#: (skills, level) patterns the synthetic roster rotates through (technical mostly level 2)
SKILL_SETS: tuple[tuple[str, int], ...] = (
    ("billing,technical,retention", 2),
    ("technical,sales", 1),
    ("sales,billing", 1),
    ("billing,technical,sales,retention", 2),
    ("technical,sales,retention", 2),
    ("billing,sales", 1),
)
LANGUAGE_GROUPS: tuple[str, ...] = ("en", "en,es", "en,fr")


def agent_id(index: int) -> str:
    """The id of the synthetic roster's ``index``-th agent: ``agent-000`` …"""
    return f"agent-{index:03d}"


def agents_parquet(repo_path: Path | str) -> Path:
    """The offline Parquet of the agent roster."""
    return Path(repo_path) / "data" / "agents.parquet"


def generate_agents(n: int = DEFAULT_AGENTS, seed: int = 7, now: float = 0.0) -> pd.DataFrame:
    """A synthetic roster of ``n`` agents, deterministic in ``seed``: three language groups
    (en; en+es; en+fr), skill sets rotating through :data:`SKILL_SETS` (so every skill and
    language has qualified agents, retention included), capacity 2–6, a load below
    capacity for most, one agent in eight not available. ``now``: the rows' event time."""
    import pandas as pd

    if n < 1:
        raise WorkspaceError("agents must be >= 1", field="agents")
    rng = np.random.default_rng([seed, 17])
    capacity = rng.integers(2, 7, n)
    load = np.minimum(rng.integers(0, 6, n), capacity)
    skills, levels = zip(*(SKILL_SETS[(i // 3) % len(SKILL_SETS)] for i in range(n)), strict=True)
    return pd.DataFrame(
        {
            AGENT_JOIN_KEY: [agent_id(i) for i in range(n)],
            "skills": list(skills),
            "level": np.asarray(levels, dtype=np.int64),
            "languages": [LANGUAGE_GROUPS[i % 3] for i in range(n)],
            "load": load.astype(np.int64),
            "capacity": capacity.astype(np.int64),
            "available": rng.random(n) >= 0.125,
            "event_timestamp": pd.Timestamp(int(now), unit="s", tz="UTC"),
        }
    )


def write_agents_parquet(repo_path: Path | str, n: int, seed: int, now: float) -> int:
    """Write the synthetic roster as the ``agent`` view's offline data (atomically)."""
    path = agents_parquet(repo_path)
    tmp = path.with_suffix(".parquet.tmp")
    frame = generate_agents(n, seed, now)
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return len(frame)


def clear_agent_rows(store: FeatureStore) -> None:
    """Drop every online row of the ``agent`` view (before a regenerated roster is
    materialised, so agents no longer in the roster do not linger)."""

    clear_online_views(store, [store.get_feature_view(AGENT_VIEW)], AGENT_JOIN_KEY)


def push_agents(store: FeatureStore, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write agent rows (``agent_id`` and every feature) through the ``agent_push`` push
    source, to the online store and the offline Parquet (Feast's ``ONLINE_AND_OFFLINE``):
    how load and availability change, and how a new agent joins the roster (the roster's
    ids are the Parquet's; the offline rows are also the agents' history for training).

    On a SQLite online store the push is named in the store's change journal
    (:mod:`features.cache`) in the same transaction: a commit without a journal entry
    would empty every process's customer-row cache, and agent load may be pushed every
    second. (A push made straight through Feast does empty those caches.)"""
    import pandas as pd
    from feast.data_source import PushMode

    frame = pd.DataFrame([dict(r) for r in rows])
    # the Parquet's timestamps are milliseconds: Feast refuses to cast finer ones down
    frame["event_timestamp"] = pd.Timestamp.now(tz="UTC").floor("ms")
    if store.config.online_store.type == "sqlite":
        journal = [f"{AGENT_JOIN_KEY}:{r[AGENT_JOIN_KEY]}".encode() for r in rows]
        push_online_journaled(store, AGENT_PUSH_SOURCE, frame, journal)
        store.push(AGENT_PUSH_SOURCE, frame, to=PushMode.OFFLINE)
    else:
        store.push(AGENT_PUSH_SOURCE, frame, to=PushMode.ONLINE_AND_OFFLINE)
