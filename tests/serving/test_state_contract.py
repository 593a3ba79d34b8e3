"""One contract for every implementation of the replicas' shared state
(:mod:`serving.state.ports`): the embedded SQLite files and PostgreSQL (a real server, the
session's ``postgres`` fixture). Each test runs against both, the store chosen the way a
server chooses it, from the settings (``MAESTRO_STATE_URL``). Claims race between two real
OS processes; a process killed between claiming a reward and writing it loses nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from serving.eventlog.log import EventLog
from serving.eventlog.tombstones import customer_hash, forget_requests, record_erasure
from serving.experiments.assignments import AssignmentTable
from serving.settings import Settings
from serving.state.ports import AssignmentStore, LogIndex
from serving.state.select import assignment_store, log_index_opener

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """A workspace's settings whose shared state is on the parametrized store."""
    url = None if request.param == "sqlite" else request.getfixturevalue("postgres").database()
    return Settings(home=tmp_path / "home", state_url=url)


@pytest.fixture
def index(settings: Settings) -> LogIndex:
    handle = log_index_opener(settings)("replica-a")
    yield handle
    handle.close()


def _open_log(settings: Settings, **options: object) -> EventLog:
    return EventLog(settings.logs_dir, index=log_index_opener(settings), **options).open()


def test_the_first_claim_wins_and_sum_mode_adds(settings: Settings, index: LogIndex) -> None:
    other = log_index_opener(settings)("replica-b")
    try:
        assert isinstance(index, LogIndex)
        assert index.claim("e-1", 1.0, 10.0, "first") == (1, "replica-a")
        assert other.claim("e-1", 5.0, 11.0, "first") == (2, "replica-a")
        assert index.is_claimed("e-1") and not other.is_claimed("e-2")
        assert other.claim("e-2", 0.5, 12.0, "sum") == (1, "replica-b")
        assert index.claim("e-2", 0.25, 13.0, "sum") == (2, "replica-b")
    finally:
        other.close()


def test_confirmed_claims_survive_a_release_and_unconfirmed_ones_do_not(index: LogIndex) -> None:
    for event in ("e-1", "e-2", "e-3"):
        index.claim(event, 1.0, 1.0, "first")
    index.confirm(["e-1", "e-2"], "replica-a")
    index.confirm(["e-3"], "replica-z")  # someone else's name confirms nothing
    assert index.claim("e-1", 1.0, 2.0, "first") == (2, None)
    assert index.release("replica-a") == 1  # e-3: claimed, never written
    assert not index.is_claimed("e-3") and index.is_claimed("e-2")


def test_request_answers_are_kept_first_wins_and_forgotten(index: LogIndex) -> None:
    index.remember_request("c-1\x1fdefault\x1fr-1", '{"a":1}', 100.0)
    index.remember_request("c-1\x1fdefault\x1fr-1", '{"a":2}', 101.0)  # a race's loser
    index.remember_request("c-10\x1fdefault\x1fr-1", '{"b":1}', 200.0)
    assert index.find_request("c-1\x1fdefault\x1fr-1") == '{"a":1}'
    assert forget_requests(index, "c-1") == 1  # c-10 is another customer
    assert index.find_request("c-1\x1fdefault\x1fr-1") is None
    index.forget_requests_before(300.0)
    assert index.find_request("c-10\x1fdefault\x1fr-1") is None


def test_erasure_tombstones_are_upserted_and_pruned(index: LogIndex) -> None:
    record_erasure(index, "c-old", at=1.0)
    record_erasure(index, "c-1", at=100.0)
    record_erasure(index, "c-1", at=200.0)
    record_erasure(index, "c-2", at=30 * 86400.0 + 50)  # over 30 days after c-old only
    stones = index.erasures()
    assert stones == {customer_hash("c-2"): 30 * 86400.0 + 50, customer_hash("c-1"): 200.0}
    assert "c-1" not in json.dumps(stones)  # hashes, never ids


_CLAIMER = """
import json, sys
sys.path.insert(0, {root!r})
from serving.settings import Settings
from serving.state.select import log_index_opener
index = log_index_opener(Settings(home={home!r}, state_url={url!r}))({name!r})
print('ready', flush=True)
sys.stdin.readline()
won = [e for e in ['e-%d' % i for i in range(300)] if index.claim(e, 1.0, 0.0, 'first')[0] == 1]
index.close()
print(json.dumps(won))
"""


def test_two_processes_claiming_the_same_rewards_each_win_a_disjoint_share(
    settings: Settings,
) -> None:
    url = None if settings.state_url is None else settings.state_url.get_secret_value()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CLAIMER.format(root=str(ROOT), home=str(settings.home),
                                                   url=url, name=name)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        for name in ("p-1", "p-2")
    ]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready"
    for proc in procs:  # both start claiming at once
        proc.stdin.write("go\n")
        proc.stdin.flush()
    won = [set(json.loads(proc.communicate(timeout=120)[0].strip())) for proc in procs]
    assert won[0].isdisjoint(won[1])
    assert won[0] | won[1] == {f"e-{i}" for i in range(300)}


def _die_while_rewarding(settings: Settings, event_id: str) -> None:
    """A replica logs a decision, claims its reward and is killed before writing it."""
    url = None if settings.state_url is None else settings.state_url.get_secret_value()
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from serving.eventlog.log import EventLog
        from serving.settings import Settings
        from serving.state.select import log_index_opener
        from test_event_log import _row
        settings = Settings(home={str(settings.home)!r}, state_url={url!r})
        log = EventLog(settings.logs_dir, index=log_index_opener(settings),
                       roll_seconds=3600).open()
        log.append_decision(_row({event_id!r}))
        append = log._append
        def die_before_reward(line):
            if b'"_t":"r"' in line:
                os.kill(os.getpid(), signal.SIGKILL)
            append(line)
        log._append = die_before_reward
        log.record_reward({event_id!r}, 1.0, late=False)
    """)
    proc = subprocess.run([sys.executable, "-c", script], timeout=120)
    assert proc.returncode == -signal.SIGKILL


def test_a_claim_never_written_is_released_when_the_spool_is_recovered(
    settings: Settings,
) -> None:
    _die_while_rewarding(settings, "e-lost")
    probe = log_index_opener(settings)("probe")
    assert probe.is_claimed("e-lost")  # claimed by the dead replica, never written
    probe.close()
    survivor = _open_log(settings, roll_seconds=3600)  # recovers the dead spool
    first = survivor.record_reward("e-lost", 1.0, late=False)
    again = survivor.record_reward("e-lost", 1.0, late=False)
    survivor.close()
    assert first.accepted and not first.duplicate
    assert again.duplicate and not again.accepted
    rewards = pd.read_parquet(settings.logs_dir / "rewards")
    assert int(((rewards["event_id"] == "e-lost") & rewards["counted"]).sum()) == 1
    decisions = pd.read_parquet(settings.logs_dir / "decisions")
    assert decisions["event_id"].tolist() == ["e-lost"]  # the dead replica's decision too


def test_an_erasure_through_one_log_drops_the_rows_anothers_roll_brings(
    settings: Settings,
) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from test_event_log import _row

    one, two = _open_log(settings, roll_seconds=3600), _open_log(settings, roll_seconds=3600)
    try:
        two.append_decision(_row("e-gone", customer="c-erased"))
        two.append_decision(_row("e-kept", customer="c-kept"))
        counts = one.erase_customer("c-erased")
        assert counts == {"decisions": 0, "rewards": 0}  # not in one's spool nor Parquet
    finally:
        one.close()
        two.close()  # its final roll reads the tombstone from the shared index
    decisions = pd.read_parquet(settings.logs_dir / "decisions")
    assert decisions["event_id"].tolist() == ["e-kept"]


@pytest.fixture
def stores(settings: Settings) -> tuple[AssignmentStore, AssignmentStore]:
    """Two replicas' handles on the assignment store."""
    first, second = assignment_store(settings), assignment_store(settings)
    yield first, second
    first.close()
    second.close()


def test_assignments_first_writer_wins_and_erasure_forgets(stores) -> None:
    one, two = stores
    assert isinstance(one, AssignmentStore)
    assert one.insert_new([("s:dp", "c-1", "A", 1.0), ("s:dp", "c-2", "B", 1.0)]) == 2
    assert two.insert_new([("s:dp", "c-1", "B", 2.0), ("s:dp", "c-3", "A", 2.0)]) == 1
    assert two.read("s:dp", "c-1") == "A" and one.read("s:dp", "c-3") == "A"
    assert one.read("s:dp", "c-9") is None
    assert two.erase("c-1") == 1 and one.read("s:dp", "c-1") is None


def test_assignment_tables_adopt_the_variant_another_replica_wrote_first(
    settings: Settings,
) -> None:
    opened: list[Callable[[], None]] = []
    tables = []
    for _ in range(2):
        table = AssignmentTable(assignment_store(settings), flush_seconds=3600)
        tables.append(table)
        opened.append(table.close)
    try:
        assert tables[0].get_or_set("s:dp", "c-1", "A") == "A"
        assert tables[1].get_or_set("s:dp", "c-1", "B") == "B"  # neither written yet
        assert tables[0].flush() == 1
        assert tables[1].flush() == 0  # lost the race: adopts A
        assert tables[1].get_or_set("s:dp", "c-1", "B") == "A"
        assert tables[1].erase("c-1") == 1
    finally:
        for close in opened:
            close()


def test_a_postgres_url_is_required_and_an_unreachable_one_fails_loudly(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from serving.errors import SharedStateError

    with pytest.raises(ValidationError, match="must be a postgresql:// URL"):
        Settings(home=tmp_path, state_url="redis://127.0.0.1:1")
    from live_servers import free_port

    bad = Settings(home=tmp_path, state_url=f"postgresql://u:secret@127.0.0.1:{free_port()}/x")
    with pytest.raises(SharedStateError, match=r"cannot use the shared state") as caught:
        log_index_opener(bad)("r")
    assert "secret" not in str(caught.value) and caught.value.http_status == 503
