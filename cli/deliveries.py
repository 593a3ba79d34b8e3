"""``maestro deliveries``: the dead letters of the delivery outbox, listed and re-queued.

A re-queued request is pending again with a fresh attempt count; a running server's
delivery worker sends it within ``MAESTRO_DELIVERY_POLL_SECONDS``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from cli.errors import CommandError


def list_dead_letters(settings: Any, limit: int) -> list[str]:
    """One line per dead letter (oldest first), then the outbox's counts per state."""
    from serving.delivery.factory import outbox

    box = outbox(settings)
    try:
        letters = box.dead_letters(limit)
        counts = box.counts()
    finally:
        box.close()
    lines = [
        f"{d.delivery_id}  {d.destination}  trigger={d.trigger}  customer={d.customer_id}  "
        f"attempts={d.attempts}  at={datetime.fromtimestamp(d.at, UTC).isoformat()}  {d.reason}"
        for d in letters
    ]
    lines.append("outbox: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return lines


def requeue_dead_letters(settings: Any, ids: Sequence[str], every: bool) -> str:
    """Re-queue the dead letters ``ids`` (or all with ``every``); the line to print."""
    from serving.delivery.factory import outbox

    if not ids and not every:
        raise CommandError("name the dead letters to re-queue (DELIVERY_ID...) or give --all")
    if ids and every:
        raise CommandError("give DELIVERY_ID... or --all, not both")
    box = outbox(settings)
    try:
        wanted = [d.delivery_id for d in box.dead_letters(1_000_000)] if every else list(ids)
        done = box.requeue(wanted)
    finally:
        box.close()
    if not every and done < len(wanted):
        raise CommandError(f"re-queued {done} of {len(wanted)}: the others are not dead "
                           "letters (see `maestro deliveries list`)")
    return f"re-queued {done} dead letter(s)"
