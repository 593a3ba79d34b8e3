"""Identity links: an anonymous id (device, cookie) → the customer id it was identified as.

An unlinked anonymous id has its own profile, ``anon:<id>`` (:func:`anonymous_profile`):
its features, contacts and decisions are stored under that id, never under a customer's.

Events and decisions may carry an ``anonymous_id`` instead of a ``customer_id``. Until an
``identify`` event links it, the anonymous id is its own profile (its session features, its
contacts, its consent are stored under it). Each anonymous event is also *journaled* here
(the validated event as JSON), so that ``identify`` can replay it onto the customer's
profile: the customer's rows become exactly what they would be had the events carried the
customer id (a consent withdrawn while anonymous stays withdrawn; session counters add up).

The links are shared by every process (and every replica): :class:`IdentityStore` is the
port, :class:`SQLiteIdentityStore` (``$MAESTRO_HOME/identity.db``, one machine) and
:class:`serving.state.identity_redis.RedisIdentityStore` and
:class:`serving.state.identity_postgres.PostgresIdentityStore` (every node) implement it. A link
is made once and never moved: a second ``identify`` of the same anonymous id to another
customer keeps the first link (the caller is told which customer holds it).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from serving.errors import IdentityStoreError
from serving.state.sqlite_tx import immediate, open_shared

if TYPE_CHECKING:
    from serving.settings import Settings

#: Events journaled per anonymous id; older ones are dropped (a bot's endless session).
JOURNAL_LIMIT = 1000
#: An unlinked anonymous id's own profile (features, contacts, log rows) is kept under this
#: prefix, so that an anonymous id can never name, and read, a customer's profile.
ANONYMOUS_PREFIX = "anon:"
#: The longest anonymous id (its profile id stays within the 128 characters of an id).
MAX_ANONYMOUS_ID = 128 - len(ANONYMOUS_PREFIX)


def anonymous_profile(anonymous_id: str) -> str:
    """The profile id of an anonymous id not (yet) linked to a customer."""
    return ANONYMOUS_PREFIX + anonymous_id


class IdentityStore(Protocol):
    """Links of anonymous ids to customer ids, and the journal of anonymous events."""

    def link(self, anonymous_id: str, customer_id: str) -> str:
        """Link ``anonymous_id`` to ``customer_id`` unless it is linked already; returns
        the customer it is linked to (the first link wins)."""
        ...

    def resolve(self, anonymous_id: str) -> str | None:
        """The customer ``anonymous_id`` is linked to, or None."""
        ...

    def anonymous_ids(self, customer_id: str) -> list[str]:
        """The anonymous ids linked to ``customer_id``, sorted."""
        ...

    def journal(self, anonymous_id: str, event: bytes) -> None:
        """Append one anonymous event (JSON) to the id's journal (the last
        :data:`JOURNAL_LIMIT` are kept)."""
        ...

    def take_journal(self, anonymous_id: str) -> list[bytes]:
        """The id's journaled events in arrival order, removed from the store."""
        ...

    def erase_customer(self, customer_id: str) -> dict[str, int]:
        """Forget the customer's links and the journals of its anonymous ids."""
        ...

    def erase_anonymous(self, anonymous_id: str) -> dict[str, int]:
        """Forget one anonymous id: its link and its journal."""
        ...

    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS links (
    anonymous_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, linked_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS links_customer ON links (customer_id);
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, anonymous_id TEXT NOT NULL, event BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS journal_anonymous ON journal (anonymous_id, seq);
"""


class SQLiteIdentityStore:
    """:class:`IdentityStore` over one SQLite file (WAL: every process of one machine)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = open_shared(self.path, _SCHEMA, error=IdentityStoreError, what="identity store")

    def _run(self, fn, *args):  # type: ignore[no-untyped-def]
        """``fn(db, *args)`` in one IMMEDIATE transaction; SQLite errors → 503."""
        return immediate(
            self._db, self._lock, fn, *args, error=IdentityStoreError, what="identity store"
        )

    def link(self, anonymous_id: str, customer_id: str) -> str:
        import time

        def run(db: sqlite3.Connection) -> str:
            db.execute(
                "INSERT OR IGNORE INTO links VALUES (?, ?, ?)",
                (anonymous_id, customer_id, time.time()),
            )
            row = db.execute(
                "SELECT customer_id FROM links WHERE anonymous_id = ?", (anonymous_id,)
            ).fetchone()
            return str(row[0])

        return str(self._run(run))

    def resolve(self, anonymous_id: str) -> str | None:
        with self._lock:
            try:
                row = self._db.execute(
                    "SELECT customer_id FROM links WHERE anonymous_id = ?", (anonymous_id,)
                ).fetchone()
            except sqlite3.Error as exc:
                raise IdentityStoreError(f"identity store: {exc}") from exc
        return None if row is None else str(row[0])

    def anonymous_ids(self, customer_id: str) -> list[str]:
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT anonymous_id FROM links WHERE customer_id = ? ORDER BY 1",
                    (customer_id,),
                ).fetchall()
            except sqlite3.Error as exc:
                raise IdentityStoreError(f"identity store: {exc}") from exc
        return [str(r[0]) for r in rows]

    def journal(self, anonymous_id: str, event: bytes) -> None:
        def run(db: sqlite3.Connection) -> None:
            db.execute("INSERT INTO journal (anonymous_id, event) VALUES (?, ?)",
                       (anonymous_id, event))
            db.execute(
                "DELETE FROM journal WHERE anonymous_id = ? AND seq NOT IN (SELECT seq FROM "
                "journal WHERE anonymous_id = ? ORDER BY seq DESC LIMIT ?)",
                (anonymous_id, anonymous_id, JOURNAL_LIMIT),
            )

        self._run(run)

    def take_journal(self, anonymous_id: str) -> list[bytes]:
        def run(db: sqlite3.Connection) -> list[bytes]:
            rows = db.execute(
                "SELECT event FROM journal WHERE anonymous_id = ? ORDER BY seq", (anonymous_id,)
            ).fetchall()
            db.execute("DELETE FROM journal WHERE anonymous_id = ?", (anonymous_id,))
            return [bytes(r[0]) for r in rows]

        return list(self._run(run))

    def erase_customer(self, customer_id: str) -> dict[str, int]:
        def run(db: sqlite3.Connection) -> dict[str, int]:
            anon = [r[0] for r in db.execute(
                "SELECT anonymous_id FROM links WHERE customer_id = ?", (customer_id,))]
            events = sum(
                db.execute("DELETE FROM journal WHERE anonymous_id = ?", (a,)).rowcount
                for a in anon
            )
            links = db.execute("DELETE FROM links WHERE customer_id = ?", (customer_id,)).rowcount
            return {"identity_links": links, "anonymous_events": events}

        return dict(self._run(run))

    def erase_anonymous(self, anonymous_id: str) -> dict[str, int]:
        def run(db: sqlite3.Connection) -> dict[str, int]:
            events = db.execute(
                "DELETE FROM journal WHERE anonymous_id = ?", (anonymous_id,)).rowcount
            links = db.execute(
                "DELETE FROM links WHERE anonymous_id = ?", (anonymous_id,)).rowcount
            return {"identity_links": links, "anonymous_events": events}

        return dict(self._run(run))

    def close(self) -> None:
        with self._lock:
            self._db.close()


def identity_store(settings: Settings) -> IdentityStore:
    """The identity store beside the contact store: the contact store's Redis with
    ``contact_store = redis``; else the shared-state PostgreSQL when ``MAESTRO_STATE_URL``
    names one (:class:`serving.state.identity_postgres.PostgresIdentityStore`); else
    ``$MAESTRO_HOME/identity.db``."""
    if settings.contact_store == "redis":
        from serving.state.identity_redis import RedisIdentityStore

        assert settings.contact_redis_url is not None  # checked by the settings
        return RedisIdentityStore(settings.contact_redis_url)
    if settings.state_url is not None:
        from serving.state.identity_postgres import PostgresIdentityStore

        return PostgresIdentityStore(settings.state_url.get_secret_value())
    return SQLiteIdentityStore(settings.home / "identity.db")
