"""One contract suite for every contact store (the embedded SQLite one and Redis on a real
redis-server): history windows, keys counted once, failures, activation, budgets."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from policies.contact_rules import Contact
from serving.state.contacts import (
    COMMITTED,
    CONFLICT,
    EXHAUSTED,
    Commit,
    ContactStore,
    Pending,
    Reservation,
    outside_key,
)

DAY = 86_400.0
NOW = 1_800_000_000.0


def make_store(kind: str, tmp_path: Path, redis_port: int | None) -> ContactStore:
    if kind == "sqlite":
        from serving.state.contacts_sqlite import SQLiteContactStore

        return SQLiteContactStore(tmp_path / "contacts.db")
    from serving.state.contacts_redis import RedisContactStore

    return RedisContactStore(f"redis://127.0.0.1:{redis_port}/0", prefix=f"t{uuid.uuid4().hex}:")


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ContactStore]:
    port = request.getfixturevalue("redis_server") if request.param == "redis" else None
    s = make_store(request.param, tmp_path, port)
    yield s
    s.close()


def email(ts: float, offer: str = "discount") -> Contact:
    return Contact(ts, "email", "email_discount", offer, "marketing")


def decide(store: ContactStore, cid: str, eid: str, contact: Contact, **kw: object) -> str:
    snap = store.read(cid, 0.0, (), NOW)
    write = Commit(cid, eid, snap.version, contact, None, kw.get("reservation"))
    return store.commit(write, kw.get("now", NOW))


def test_store_satisfies_the_protocol(store: ContactStore) -> None:
    assert isinstance(store, ContactStore)


def test_history_window_excludes_an_8_day_old_contact(store: ContactStore) -> None:
    assert decide(store, "c-1", "e-old", email(NOW - 8 * DAY)) == COMMITTED
    assert decide(store, "c-1", "e-new", email(NOW - 1 * DAY)) == COMMITTED
    week = store.read("c-1", NOW - 7 * DAY, (), NOW).history
    assert [c.ts for c in week] == [NOW - 1 * DAY]
    assert week[0] == email(NOW - DAY)
    assert len(store.read("c-1", NOW - 30 * DAY, (), NOW).history) == 2
    assert store.read("c-other", 0.0, (), NOW).history == ()


def test_commit_refuses_a_stale_version(store: ContactStore) -> None:
    snap = store.read("c-1", 0.0, (), NOW)
    assert store.commit(Commit("c-1", "e-1", snap.version, email(NOW)), NOW) == COMMITTED
    # a second decision that read the same (now stale) version must re-run
    assert store.commit(Commit("c-1", "e-2", snap.version, email(NOW)), NOW) == CONFLICT
    assert len(store.read("c-1", 0.0, (), NOW).history) == 1


def test_a_key_counts_once_and_outside_contacts_count(store: ContactStore) -> None:
    outside = Contact(NOW - 60, "sms", "", "", "")
    key = outside_key("c-1", outside)
    assert store.record("c-1", key, outside) is True
    assert store.record("c-1", key, outside) is False  # a retried message_sent
    assert decide(store, "c-1", "e-1", email(NOW)) == COMMITTED
    assert store.record("c-1", "e-1", email(NOW)) is False  # message_sent after decide
    assert sorted(c.channel for c in store.read("c-1", 0.0, (), NOW).history) == ["email", "sms"]


def test_message_failed_removes_the_contact(store: ContactStore) -> None:
    assert decide(store, "c-1", "e-1", email(NOW)) == COMMITTED
    version = store.read("c-1", 0.0, (), NOW).version
    assert store.remove("e-1") is True
    snap = store.read("c-1", 0.0, (), NOW)
    assert snap.history == () and snap.version > version
    assert store.remove("e-unknown") is False


def test_activation_counts_a_pending_contact_once(store: ContactStore) -> None:
    pending = Pending(email(NOW), NOW + DAY)
    assert store.commit(Commit("c-1", "e-1", pending=pending), NOW) == COMMITTED
    assert store.read("c-1", 0.0, (), NOW).history == ()
    first = store.activate("e-1", NOW + 10)
    assert (first.duplicate, first.counted) == (False, True)
    again = store.activate("e-1", NOW + 20)
    assert (again.duplicate, again.counted) == (True, False)
    assert store.read("c-1", 0.0, (), NOW).history == (email(NOW),)
    assert store.activated(["e-1", "e-never"]) == {"e-1"}
    # a decision recorded at decide time and then activated is not counted twice
    assert decide(store, "c-2", "e-2", email(NOW)) == COMMITTED
    assert store.activate("e-2", NOW).counted is False
    assert len(store.read("c-2", 0.0, (), NOW).history) == 1


def test_budget_reserves_up_to_max_and_releases_unactivated(store: ContactStore) -> None:
    firm = Reservation("offer:day:1", 2, None)
    for i in range(2):
        assert store.commit(Commit(f"c-{i}", f"e-{i}", reservation=firm), NOW) == COMMITTED
    assert store.commit(Commit("c-9", "e-9", reservation=firm), NOW) == EXHAUSTED
    assert store.used(["offer:day:1"], NOW) == {"offer:day:1": 2}
    # message_failed releases the unit
    assert store.remove("e-0") is True
    assert store.used(["offer:day:1"], NOW) == {"offer:day:1": 1}
    # a reservation awaiting activation lapses at its expiry unless activated
    lapsing = Reservation("coupon:campaign", 5, NOW + 100)
    for eid in ("p-1", "p-2"):
        store.commit(Commit("c-1", eid, reservation=lapsing), NOW)
    store.activate("p-1", NOW + 50)
    assert store.used(["coupon:campaign"], NOW + 50) == {"coupon:campaign": 2}
    assert store.used(["coupon:campaign"], NOW + 101) == {"coupon:campaign": 1}
    snap = store.read("c-1", 0.0, ["coupon:campaign", "offer:day:1"], NOW + 101)
    assert dict(snap.used) == {"coupon:campaign": 1, "offer:day:1": 1}


def test_erase_forgets_the_customer(store: ContactStore) -> None:
    decide(store, "c-1", "e-1", email(NOW))
    decide(store, "c-2", "e-2", email(NOW))
    assert store.erase_customer("c-1")["contacts"] == 1
    assert store.read("c-1", 0.0, (), NOW).history == ()
    assert len(store.read("c-2", 0.0, (), NOW).history) == 1


def test_an_unreachable_redis_is_a_contact_store_error(tmp_path: Path) -> None:
    """A store that cannot be reached raises the 503 error (never a bare redis exception)."""
    from live_servers import free_port

    from serving.errors import ContactStoreError
    from serving.state.contacts_redis import RedisContactStore

    store = RedisContactStore(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(ContactStoreError, match="contact store") as info:
        store.read("c-1", 0.0, (), NOW)
    assert info.value.http_status == 503
    with pytest.raises(ContactStoreError):
        store.commit(Commit("c-1", "e-1", 0, email(NOW)), NOW)
    store.close()


def test_touches_give_each_contact_with_its_key_oldest_first(store: ContactStore) -> None:
    assert decide(store, "c-t", "e-late", email(NOW - DAY)) == COMMITTED
    assert decide(store, "c-t", "e-early", email(NOW - 3 * DAY)) == COMMITTED
    outside = Contact(NOW - 2 * DAY, "sms", "", "", "")
    store.record("c-t", outside_key("c-t", outside), outside)
    touches = store.touches("c-t", NOW - 10 * DAY)
    assert [k for k, _ in touches] == ["e-early", outside_key("c-t", outside), "e-late"]
    assert touches[0][1] == email(NOW - 3 * DAY)
    assert touches[1][1].channel == "sms"
    assert [k for k, _ in store.touches("c-t", NOW - 2.5 * DAY)][-1] == "e-late"
    assert len(store.touches("c-t", NOW - 2.5 * DAY)) == 2
    assert store.touches("nobody", 0.0) == []
