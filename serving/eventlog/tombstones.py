"""Erasure tombstones: an erased customer's decisions never reach Parquet from any replica.

``DELETE /customers/{id}`` (or ``maestro erase``) reaches one process, which rolls its own
spool and rewrites the Parquet parts. Other live replicas still hold the customer's
decisions in their unrolled spool segments, and a crashed process's spool waits for the
next start to be recovered; both would bring the rows back when rolled. So erasure first
records a tombstone in the replicas' shared log index (:mod:`serving.state.ports`), and every roll —
live, final or recovery — drops the decisions of a tombstoned customer made at or
before the erasure, with the rewards of those decisions in the same segment. A decision
made after the erasure (the customer came back) is kept.

A tombstone holds a salted SHA-256 of the customer id, not the id, and the erasure time;
it is deleted after :data:`KEEP_DAYS` (by then every spool has long been rolled).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any

from serving.state.ports import LogIndex
from training.logs.schema import CUSTOMER_ID, EVENT_ID, TIMESTAMP

KEEP_DAYS = 30.0
_SALT = b"maestro-erasure-tombstone\x00"


def customer_hash(customer_id: str) -> str:
    return hashlib.sha256(_SALT + customer_id.encode()).hexdigest()


def record_erasure(index: LogIndex, customer_id: str, at: float | None = None) -> None:
    """Tombstone ``customer_id`` as erased at ``at`` (now) in the shared log index."""
    at = time.time() if at is None else at
    index.record_erasure(customer_hash(customer_id), at, KEEP_DAYS * 86400.0)


def drop_erased(
    decisions: list[dict[str, Any]],
    rewards: list[dict[str, Any]],
    erasures: Mapping[str, float],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int, int]:
    """The records without tombstoned customers' decisions (made at or before their
    erasure) and those decisions' rewards; plus how many decisions and rewards were
    dropped."""
    if not erasures or not decisions:
        return decisions, rewards, 0, 0
    gone: set[str] = set()
    kept = []
    for record in decisions:
        erased_at = erasures.get(customer_hash(str(record.get(CUSTOMER_ID))))
        if erased_at is not None and float(record.get(TIMESTAMP) or 0.0) <= erased_at:
            gone.add(record.get(EVENT_ID))
        else:
            kept.append(record)
    if not gone:
        return decisions, rewards, 0, 0
    kept_rewards = [r for r in rewards if r.get(EVENT_ID) not in gone]
    return kept, kept_rewards, len(decisions) - len(kept), len(rewards) - len(kept_rewards)


def forget_requests(index: LogIndex, customer_id: str) -> int:
    """Delete the idempotency replies kept for ``customer_id``'s ``/decide`` requests (keyed
    ``customer_id \\x1f decision_point \\x1f request_id`` in the shared index), so no
    retried request answers with an erased decision; returns how many there were."""
    return index.forget_requests(f"{customer_id}\x1f")
