"""Durable trigger timers: the protocol every timer store implements.

A trigger that matches an event schedules one timer per step of its run; an event that
cancels it removes the customer's pending run; every replica's scheduler claims the due
timers with a lease, fires them, and marks them done. A claim moves the timer's ready
time to the end of its lease, so a replica that dies mid-fire leaves the timer to be
claimed again when the lease runs out: it fires late rather than never. A late second
firing makes no second decision: the decision's ``request_id`` is the timer's id, which
``/decide`` answers once (:mod:`serving.service.recorder`).

Embedded: :class:`serving.state.timers_sqlite.SQLiteTimerStore` (one SQLite file, every
process of one machine). Networked: :class:`serving.state.timers_redis.RedisTimerStore`
(one Redis, every replica of every node). ``tests/serving/test_timer_store.py`` runs both.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Timer:
    """One pending step of a trigger's run for one customer, due at ``due_at`` (epoch
    seconds). ``attempts`` and ``token`` are set by a claim (the token proves the claim
    when the timer is marked done)."""

    timer_id: str
    trigger: str
    step: int
    customer_id: str
    due_at: float
    created_at: float
    attempts: int = 0
    token: str = ""


@runtime_checkable
class TimerStore(Protocol):
    """Where the pending timers live, shared by every replica (see the module doc)."""

    def schedule(self, timers: Sequence[Timer]) -> int:
        """Store the run ``timers`` (one trigger, one customer), replacing that customer's
        pending run of that trigger; return how many pending timers it replaced."""
        ...

    def cancel(self, customer_id: str, triggers: Collection[str]) -> int:
        """Remove the customer's pending timers of ``triggers``; return how many."""
        ...

    def claim(self, now: float, replica: str, lease_seconds: float, limit: int) -> list[Timer]:
        """Lease up to ``limit`` timers due by ``now`` (oldest first) to ``replica`` for
        ``lease_seconds``; a timer whose lease ran out is due again."""
        ...

    def done(self, timer: Timer) -> bool:
        """Remove a fired timer, if ``timer.token`` still holds its claim."""
        ...

    def pending(self) -> int:
        """How many timers are pending (claimed or not)."""
        ...

    def erase_customer(self, customer_id: str) -> int:
        """Forget every timer of the customer; return how many."""
        ...

    def close(self) -> None: ...
