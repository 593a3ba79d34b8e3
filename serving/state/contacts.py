"""The contact-history port: every customer's recent contacts, the decisions awaiting
activation, and the budget reservations, shared by every process and replica.

One decision reads a :class:`Snapshot` (the customer's contacts within the longest window,
the history's version, and the used units of the budgets it may touch) in one call, applies
the caps to it, draws, and then :meth:`ContactStore.commit` writes its contact and budget
reservation atomically — refused with ``conflict`` when the customer's history changed since
the read (another process contacted them: the decision is re-run on the new history) or with
``exhausted`` when the budget ran out. Caps and budgets therefore hold exactly across
processes, with no lock held while the policy draws.

A contact is keyed: a decision's contact by its event id, an outside contact by
:func:`outside_key` of its fields, so a retried event, or an activation after a decision-time
record, never counts twice. Implementations: :mod:`serving.state.contacts_sqlite` (embedded,
``$MAESTRO_HOME/contacts.db``) and :mod:`serving.state.contacts_redis`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol, runtime_checkable

from policies.contact_rules import Contact

#: what :meth:`ContactStore.commit` answers
COMMITTED, CONFLICT, EXHAUSTED = "committed", "conflict", "exhausted"


class Snapshot(NamedTuple):
    """One read of a customer's contact state.

    ``history``: contacts newer than the read's ``since``; ``version``: changes so far to
    this customer's history; ``used``: budget bucket → units in use now.
    """

    history: tuple[Contact, ...]
    version: int
    used: Mapping[str, int]


class Reservation(NamedTuple):
    """One budget unit: ``bucket`` (:func:`policies.contact_rules.budget_period_key`) with
    ``max`` units; ``expires`` None when firm, else the time it is released unless the
    decision is activated first."""

    bucket: str
    max: int
    expires: float | None


class Pending(NamedTuple):
    """A decision of an ``activation: required`` point, counted as a contact only once
    activated; forgotten at ``expires`` (the end of its reward window)."""

    contact: Contact
    expires: float


class Commit(NamedTuple):
    """What one decision writes: its ``contact`` (keyed by ``event_id``) when it counts now,
    its ``pending`` contact when it counts on activation, its budget ``reservation``;
    ``version`` (when given) is the history version the decision read."""

    customer_id: str
    event_id: str
    version: int | None = None
    contact: Contact | None = None
    pending: Pending | None = None
    reservation: Reservation | None = None


class Activation(NamedTuple):
    """What activating an event id did: ``duplicate`` when it was activated before,
    ``counted`` when it added a contact to the history now."""

    duplicate: bool
    counted: bool


def outside_key(customer_id: str, contact: Contact) -> str:
    """The key of a contact made outside Maestro: the same fields give the same key (a retried
    ``message_sent`` is counted once)."""
    text = "\x1f".join((customer_id, repr(contact.ts), contact.channel, contact.action_id,
                        contact.offer, contact.category))
    return "out:" + hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


@runtime_checkable
class ContactStore(Protocol):
    """Contact history, pending activations and budgets (see the module docstring).

    Times are epoch seconds passed in by the caller (tests move the clock).
    """

    def read(
        self, customer_id: str, since: float, buckets: Sequence[str], now: float
    ) -> Snapshot:
        """The customer's contacts newer than ``since``, the history's version, and the units
        of ``buckets`` in use at ``now`` — one round trip."""
        ...

    def touches(self, customer_id: str, since: float) -> list[tuple[str, Contact]]:
        """The customer's contacts newer than ``since`` with their keys (a decision's event
        id, or :func:`outside_key`), oldest first: the decisions an outcome may join."""
        ...

    def commit(self, write: Commit, now: float) -> str:
        """Atomically: refuse with :data:`CONFLICT` when ``write.version`` is given and the
        history moved past it, with :data:`EXHAUSTED` when its reservation's bucket is full
        at ``now``; else record the contact, remember the pending one, take the reservation
        and answer :data:`COMMITTED`."""
        ...

    def record(self, customer_id: str, key: str, contact: Contact) -> bool:
        """Add a contact that already happened (outside Maestro); False when ``key`` was
        already counted."""
        ...

    def activate(self, event_id: str, now: float) -> Activation:
        """Mark ``event_id`` activated (idempotent): its pending contact joins the history and
        its reservation becomes firm."""
        ...

    def activated(self, event_ids: Sequence[str]) -> set[str]:
        """Those of ``event_ids`` that were activated (training learns only from them at an
        ``activation: required`` decision point)."""
        ...

    def remove(self, event_id: str) -> bool:
        """``message_failed``: the decision's contact no longer counts and its budget unit is
        released; False when nothing was recorded for it."""
        ...

    def used(self, buckets: Sequence[str], now: float) -> dict[str, int]:
        """Units of each bucket in use at ``now``."""
        ...

    def erase_customer(self, customer_id: str) -> dict[str, int]:
        """Forget the customer's contacts and pending decisions; counts by kind."""
        ...

    def close(self) -> None: ...
