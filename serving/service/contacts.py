"""The contact stage of a decision, and the contact events and activations around it.

At ``/decide``, after the rules: one read of the customer's contact history and budget use
(:class:`serving.state.contacts.ContactStore`), the caps, cool-downs, repetition and
exhausted budgets of :mod:`policies.contact_rules` move actions to the excluded list, the
policy draws over what remains, and the decision's contact and budget unit are committed
atomically. A commit refused because another process changed the customer's history (or
took the budget's last unit) in between re-runs the stage and the draw on the new state, so
the logged propensities are always those of the answer's own draw and no cap or budget is
ever overrun. A contacting decision is recorded as a contact when answered, or — at an
``activation: required`` point — held pending until ``POST /decisions/{event_id}/activate`` or
a ``message_sent`` naming it; its budget unit lapses at the end of the reward window unless
activated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from features.errors import InvalidEventError
from policies.catalog import Catalog, DecisionPoint
from policies.contact_rules import Contact, budget_period_key, contacts_customer
from policies.types import CHANNELS, Action, Decision, Exclusion
from serving.errors import (
    ContactStoreError,
    LateRewardError,
    UnknownEventError,
)
from serving.service.ids import EventIdSigner
from serving.state.contacts import (
    COMMITTED,
    Activation,
    Commit,
    ContactStore,
    Pending,
    Reservation,
    outside_key,
)

#: commits refused by concurrent writers before the decision is refused with ``503``
ATTEMPTS = 32
#: the event types of ``POST /events`` this stage handles (they change no feature)
CONTACT_EVENTS = ("message_sent", "message_failed")
_R = TypeVar("_R", bound=tuple)  # type: ignore[type-arg]


def _text(value: object) -> str:
    return "" if value is None else str(value)


class ContactStage:
    """Caps and budgets at decide time; activations and contact events (see the module
    docstring)."""

    def __init__(self, store: ContactStore, catalog: Catalog, signer: EventIdSigner) -> None:
        self.store = store
        self.catalog = catalog
        self.signer = signer
        #: action id → (offer, category) from the catalog, for outside contacts naming one
        self._known: dict[str, tuple[str, str]] = {}
        for point in catalog.decision_points.values():
            for a in point.actions:
                self._known.setdefault(
                    a.id, (_text(a.features.get("offer")), _text(a.features.get("category")))
                )

    # ------------------------------------------------------------------ decide
    def decide(
        self,
        customer_id: str,
        point: DecisionPoint,
        now: float,
        eligible: list[Action],
        excluded: list[Exclusion],
        event_id: str,
        choose: Callable[[list[Action], list[Exclusion]], _R],
    ) -> tuple[_R, list[Action], list[Exclusion]]:
        """``choose(eligible, excluded)`` over what the history and budgets leave, committed;
        returns its result with the final eligible and excluded lists."""
        rules = point.rules.contact
        budgets = point.budgets
        reads = rules.active or bool(budgets)
        deadline = now + point.reward_window_seconds
        for _ in range(ATTEMPTS):
            version = None
            elig, excl = eligible, excluded
            if reads:
                buckets = {
                    a.id: budget_period_key(a.id, budgets[a.id].per, now)
                    for a in eligible
                    if a.id in budgets
                } if budgets else {}
                snap = self.store.read(
                    customer_id, now - rules.horizon_seconds, list(buckets.values()), now
                )
                exhausted = {
                    aid: budgets[aid].reason(aid)
                    for aid, bucket in buckets.items()
                    if snap.used[bucket] >= budgets[aid].max
                } if buckets else None
                elig, more = rules.split(eligible, snap.history, now, exhausted)
                excl = excluded + more if more else excluded
                version = snap.version if rules.active else None
            result = choose(elig, excl)
            decision: Decision = result[0]
            if self._commit(customer_id, point, decision.action, event_id, version, now,
                            deadline) == COMMITTED:
                return result, elig, excl
        raise ContactStoreError(
            f"customer {customer_id!r}: contact history contended by concurrent decisions"
        )

    def _commit(
        self,
        customer_id: str,
        point: DecisionPoint,
        action: Action | None,
        event_id: str,
        version: int | None,
        now: float,
        deadline: float,
    ) -> str:
        if action is None:
            return COMMITTED
        contacting = contacts_customer(action)
        budget = point.budgets.get(action.id)
        if not contacting and budget is None:
            return COMMITTED
        required = point.activation == "required"
        reservation = None
        if budget is not None:
            bucket = budget_period_key(action.id, budget.per, now)
            reservation = Reservation(bucket, budget.max, deadline if required else None)
        contact = Contact(now, action.channel, action.id, _text(action.features.get("offer")),
                          _text(action.features.get("category")))
        now_counts = contacting and not required
        write = Commit(
            customer_id,
            event_id,
            version=version if now_counts else None,
            contact=contact if now_counts else None,
            pending=Pending(contact, deadline) if contacting and required else None,
            reservation=reservation,
        )
        return self.store.commit(write, now)

    # ------------------------------------------------------------------ after the decision
    def _checked(self, event_id: str, now: float) -> None:
        parsed = self.signer.verify(event_id)
        if parsed is None:
            raise UnknownEventError(f"event id {event_id!r} was never issued by this service")
        if now > parsed.deadline:
            raise LateRewardError(f"event {event_id} is past its reward window")

    def activate(self, event_id: str, now: float) -> dict[str, Any]:
        """``POST /decisions/{event_id}/activate`` (idempotent; ``404`` unknown, ``409`` late)."""
        self._checked(event_id, now)
        done: Activation = self.store.activate(event_id, now)
        return {"event_id": event_id, "activated": True, "duplicate": done.duplicate}

    def sent(self, customer_id: str, props: Mapping[str, Any], ts: float) -> None:
        """``message_sent``: activates the decision it names, else records an outside
        contact on ``properties.channel``."""
        event_id = props.get("event_id")
        if event_id is not None:
            if not isinstance(event_id, str) or not event_id:
                raise InvalidEventError("properties.event_id must be a decision's event id",
                                        field="properties.event_id")
            self.activate(event_id, ts)
            return
        channel = props.get("channel")
        if not isinstance(channel, str) or channel not in CHANNELS - {"none", "agent"}:
            raise InvalidEventError(
                "message_sent needs properties.event_id or properties.channel (one of "
                f"{', '.join(sorted(CHANNELS - {'none', 'agent'}))})",
                field="properties.channel",
            )
        action_id = _text(props.get("action_id"))
        offer, category = self._known.get(action_id, ("", ""))
        contact = Contact(ts, channel, action_id, _text(props.get("offer")) or offer,
                          _text(props.get("category")) or category)
        self.store.record(customer_id, outside_key(customer_id, contact), contact)

    def failed(self, props: Mapping[str, Any]) -> None:
        """``message_failed``: the decision's contact no longer counts."""
        event_id = props.get("event_id")
        if not isinstance(event_id, str) or not event_id:
            raise InvalidEventError("message_failed needs properties.event_id",
                                    field="properties.event_id")
        if self.signer.verify(event_id) is None:
            raise UnknownEventError(f"event id {event_id!r} was never issued by this service",
                                    field="properties.event_id")
        self.store.remove(event_id)

    def budgets(self, now: float) -> list[dict[str, Any]]:
        """``GET /budgets``: every budgeted action's budget, use and remaining units now."""
        rows: list[tuple[str, str, Any, str]] = []
        for point in self.catalog.decision_points.values():
            for aid, budget in point.budgets.items():
                rows.append((point.name, aid, budget, budget_period_key(aid, budget.per, now)))
        used = self.store.used(sorted({r[3] for r in rows}), now) if rows else {}
        return [
            {"decision_point": dp, "action_id": aid, "max": b.max, "per": b.per, "period": key,
             "used": used[key], "remaining": max(0, b.max - used[key])}
            for dp, aid, b, key in rows
        ]
