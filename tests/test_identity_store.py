"""The identity store's contract, over SQLite, a real Redis and a real PostgreSQL, and
across processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.state.identity import JOURNAL_LIMIT, IdentityStore, SQLiteIdentityStore
from serving.state.identity_postgres import PostgresIdentityStore
from serving.state.identity_redis import RedisIdentityStore


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IdentityStore]:
    if request.param == "sqlite":
        made: IdentityStore = SQLiteIdentityStore(tmp_path / "identity.db")
    elif request.param == "postgres":
        made = PostgresIdentityStore(request.getfixturevalue("postgres").database())
    else:
        port = request.getfixturevalue("redis_server")
        made = RedisIdentityStore(f"redis://127.0.0.1:{port}/14")
        keys = made._r.keys("mi:*")  # type: ignore[attr-defined]
        if keys:  # a clean slate in db 14 (no other test writes mi: keys)
            made._r.delete(*keys)  # type: ignore[attr-defined]
    yield made
    made.close()


def test_first_link_wins_and_resolves(store: IdentityStore) -> None:
    assert store.resolve("a1") is None
    assert store.link("a1", "c1") == "c1"
    assert store.link("a1", "c2") == "c1"  # never moved
    assert store.link("a2", "c1") == "c1"
    assert store.resolve("a1") == "c1"
    assert store.anonymous_ids("c1") == ["a1", "a2"]
    assert store.anonymous_ids("c2") == []


def test_journal_is_ordered_capped_and_taken_once(store: IdentityStore) -> None:
    for i in range(JOURNAL_LIMIT + 5):
        store.journal("a1", b'{"i":%d}' % i)
    taken = store.take_journal("a1")
    assert len(taken) == JOURNAL_LIMIT
    assert taken[0] == b'{"i":5}' and taken[-1] == b'{"i":%d}' % (JOURNAL_LIMIT + 4)
    assert store.take_journal("a1") == []


def test_erasure_of_customer_and_of_anonymous_id(store: IdentityStore) -> None:
    store.link("a1", "c1")
    store.link("a2", "c1")
    store.journal("a1", b"{}")
    store.journal("a3", b"{}")
    store.link("a3", "c3")
    assert store.erase_customer("c1") == {"identity_links": 2, "anonymous_events": 1}
    assert store.resolve("a1") is None and store.resolve("a2") is None
    assert store.anonymous_ids("c1") == [] and store.take_journal("a1") == []
    assert store.erase_anonymous("a3") == {"identity_links": 1, "anonymous_events": 1}
    assert store.resolve("a3") is None and store.anonymous_ids("c3") == []
    assert store.erase_anonymous("nobody") == {"identity_links": 0, "anonymous_events": 0}


_RACER = """
import sys
from pathlib import Path
from serving.state.identity import SQLiteIdentityStore
from serving.state.identity_postgres import PostgresIdentityStore
from serving.state.identity_redis import RedisIdentityStore
where = sys.argv[1]
if where.startswith("redis://"):
    s = RedisIdentityStore(where)
elif where.startswith("postgresql://"):
    s = PostgresIdentityStore(where)
else:
    s = SQLiteIdentityStore(Path(where))
won = [s.link(f"a{i}", sys.argv[2]) for i in range(200)]
s.journal("shared", sys.argv[2].encode())
print(",".join(won))
"""


def _open(where: str) -> IdentityStore:
    if where.startswith("redis://"):
        return RedisIdentityStore(where)
    if where.startswith("postgresql://"):
        return PostgresIdentityStore(where)
    return SQLiteIdentityStore(Path(where))


@pytest.mark.parametrize("kind", ["sqlite", "redis", "postgres"])
def test_two_processes_share_links_and_agree_on_the_winner(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two processes link the same 200 anonymous ids to different customers at once: each
    id ends linked to exactly one, and both processes were told that one."""
    if kind == "redis":
        port = request.getfixturevalue("redis_server")
        db = f"redis://127.0.0.1:{port}/13"
        cleaner = RedisIdentityStore(db)
        keys = cleaner._r.keys("mi:*")  # type: ignore[attr-defined]
        if keys:
            cleaner._r.delete(*keys)  # type: ignore[attr-defined]
        cleaner.close()
    elif kind == "postgres":
        db = request.getfixturevalue("postgres").database()
        _open(db).close()  # the schema exists before the racers start
    else:
        db = str(tmp_path / "identity.db")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [
        subprocess.Popen([sys.executable, "-c", _RACER, db, cid], env=env,
                         stdout=subprocess.PIPE, text=True)
        for cid in ("cx", "cy")
    ]
    answers = [p.communicate(timeout=60)[0].strip().split(",") for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert answers[0] == answers[1]
    store = _open(db)
    try:
        assert [store.resolve(f"a{i}") for i in range(200)] == answers[0]
        assert sorted(store.take_journal("shared")) == [b"cx", b"cy"]
        linked = store.anonymous_ids("cx") + store.anonymous_ids("cy")
        assert sorted(linked) == sorted(f"a{i}" for i in range(200))
    finally:
        store.close()


def test_store_follows_the_settings(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """``MAESTRO_STATE_URL`` (with the embedded contact store) puts the links in PostgreSQL;
    an unreachable one fails loudly with the store's error, never falls back to SQLite."""
    from serving.errors import IdentityStoreError
    from serving.settings import Settings
    from serving.state.identity import identity_store

    url = request.getfixturevalue("postgres").database()
    made = identity_store(Settings(home=tmp_path, state_url=url))
    try:
        assert isinstance(made, PostgresIdentityStore)
        made.link("a1", "c1")
    finally:
        made.close()
    again = _open(url)
    assert again.resolve("a1") == "c1"
    again.close()
    # offline erasure (``maestro erase``) reaches the PostgreSQL links too
    from serving.erasure import WorkspaceIdentityEraser

    eraser = WorkspaceIdentityEraser(Settings(home=tmp_path, state_url=url))
    assert eraser.linked("c1") == ["a1"]
    assert eraser.erase("c1") == {"identity_links": 1, "anonymous_events": 0}
    embedded = identity_store(Settings(home=tmp_path))
    assert isinstance(embedded, SQLiteIdentityStore)
    embedded.close()
    with pytest.raises(IdentityStoreError, match="identity store: cannot use the shared state"):
        PostgresIdentityStore("postgresql://nobody@127.0.0.1:1/none", timeout=1.0)
