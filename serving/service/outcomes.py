"""Outcome events become rewards: joined to the decisions they follow and attributed.

An outcome event (:data:`policies.attribution.OUTCOME_EVENTS`) posted to ``/events`` is
joined to decisions this way:

1. ``properties.event_id`` names the decision: that decision alone, at its decision point's
   reward for the event type (the point of the contact's action; the catalog's ``default``
   when the decision made no contact on record).
2. Otherwise the customer's contacts made by Maestro decisions (the contact history; outside
   contacts have no decision to credit) whose decision's reward window still covers the
   event's time, on ``properties.channel`` when given (required for the message outcomes:
   ``message_delivered``, ``message_opened``, ``message_clicked``, ``unsubscribed``), at a
   decision point that defines a reward for the type. A message outcome joins the latest of
   them; a ``purchase`` is shared among all of them by the attribution rule of the latest
   one's decision point (:class:`policies.attribution.Attribution`), each decision's share
   times its own point's reward.

Each share is written through :meth:`DecisionLog.record_reward`, the path of ``/reward``: one
claim per decision id in the shared log index. So, with ``reward_mode: first`` (the default),
the first reward claimed for a decision — a ``/reward`` or any outcome's share — is the one
counted and learned, and every later one is logged as a duplicate; with ``reward_mode: sum``
they all count and add up. The same outcome posted twice (the same customer, type, properties
and timestamp) is turned into rewards once, across replicas.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, NamedTuple

import orjson

from features.errors import InvalidEventError
from policies.attribution import MESSAGE_OUTCOMES, OUTCOME_EVENTS
from policies.catalog import Catalog, DecisionPoint
from policies.contact_rules import Contact
from policies.types import CHANNELS
from serving.errors import UnknownEventError
from serving.service.ids import EventIdSigner
from serving.service.ports import DecisionLog
from serving.state.contacts import ContactStore

_CONTACT_CHANNELS = CHANNELS - {"none", "agent"}


class Touch(NamedTuple):
    """A decision an outcome may be joined to: its event id, contact time, point, deadline."""

    event_id: str
    ts: float
    point: DecisionPoint
    deadline: float


class OutcomeStage:
    """Turns outcome events into attributed rewards (see the module docstring)."""

    def __init__(
        self, catalog: Catalog, store: ContactStore | None, signer: EventIdSigner, log: DecisionLog
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.signer = signer
        self.log = log
        #: action id → the first decision point listing it (whose rewards apply)
        self._point_of: dict[str, DecisionPoint] = {}
        for point in catalog.decision_points.values():
            for action in point.actions:
                self._point_of.setdefault(action.id, point)
        self._defined = {k for p in catalog.decision_points.values() for k in p.rewards.values}
        #: the longest reward window: how far back the contact history is read
        self._horizon = max(p.reward_window_seconds for p in catalog.decision_points.values())

    def handles(self, kind: str) -> bool:
        """Whether ``kind`` is an outcome some decision point defines a reward for."""
        return kind in self._defined

    def check(self, kind: str, props: Mapping[str, Any]) -> None:
        """Refuse a malformed outcome before anything is written (``422`` naming the field)."""
        event_id = props.get("event_id")
        if event_id is not None:
            if not isinstance(event_id, str) or not event_id:
                raise InvalidEventError("properties.event_id must be a decision's event id",
                                        field="properties.event_id")
            if self.signer.verify(event_id) is None:
                raise UnknownEventError(f"event id {event_id!r} was never issued by this "
                                        "service", field="properties.event_id")
        channel = props.get("channel")
        needs_channel = kind in MESSAGE_OUTCOMES and event_id is None
        if (channel is not None or needs_channel) and (
            not isinstance(channel, str) or channel not in _CONTACT_CHANNELS
        ):
            raise InvalidEventError(
                f"{kind} needs properties.event_id or properties.channel (one of "
                f"{', '.join(sorted(_CONTACT_CHANNELS))})", field="properties.channel")
        for point in self.catalog.decision_points.values():
            value = point.rewards.values.get(kind)
            if value is not None:
                value.value(props)  # raises OutcomeValueError naming the property

    def record(self, customer_id: str, kind: str, props: Mapping[str, Any], ts: float,
               now: float, stamp: float | None = None) -> list[dict[str, Any]]:
        """Join and attribute one checked outcome at time ``ts`` (``stamp``: the body's own
        timestamp, part of the outcome's identity; None when it sent none); the rewards
        written, as ``{"event_id", "reward", "counted", "attribution"}`` (empty when nothing
        joined or the same outcome was seen before)."""
        if kind not in OUTCOME_EVENTS or not self.handles(kind):
            return []
        key = _identity(customer_id, kind, props, stamp)
        if not self.log.first_sighting(key):
            return []
        shares = self._shares(customer_id, kind, props, ts)
        written = []
        for touch, share, rule in shares:
            value = touch.point.rewards.values.get(kind)
            if value is None or share <= 0.0:
                continue
            reward = share * value.value(props)
            late = now > touch.deadline
            outcome = self.log.record_reward(touch.event_id, reward, late, f"outcome:{kind}", rule)
            written.append({"event_id": touch.event_id, "reward": reward,
                            "counted": outcome.accepted, "attribution": rule})
        return written

    def _shares(self, customer_id: str, kind: str, props: Mapping[str, Any],
                ts: float) -> list[tuple[Touch, float, str]]:
        """``(touch, share, rule)`` for each decision the outcome is attributed to."""
        named = props.get("event_id")
        history = [] if self.store is None else self.store.touches(
            customer_id, ts - self._horizon
        )
        if named is not None:
            parsed = self.signer.verify(str(named))
            assert parsed is not None  # checked
            contact = next((c for k, c in history if k == named), None)
            point = self._point(contact) if contact is not None else self.catalog["default"]
            at = contact.ts if contact is not None else ts
            return [(Touch(str(named), at, point, parsed.deadline), 1.0, "event_id")]
        channel = props.get("channel")
        touches = []
        for key, contact in history:
            parsed = self.signer.verify(key)
            if parsed is None or contact.ts > ts or ts > parsed.deadline:
                continue  # an outside contact, a later one, or past its window
            if channel is not None and contact.channel != channel:
                continue
            point = self._point(contact)
            if kind in point.rewards.values:
                touches.append(Touch(key, contact.ts, point, parsed.deadline))
        if not touches:
            return []
        if kind in MESSAGE_OUTCOMES:
            return [(touches[-1], 1.0, "last_touch")]
        attribution = touches[-1].point.rewards.attribution
        split = attribution.shares([t.ts for t in touches], ts)
        return list(zip(touches, split, [attribution.rule] * len(touches), strict=True))

    def _point(self, contact: Contact) -> DecisionPoint:
        return self._point_of.get(contact.action_id) or self.catalog["default"]


def _identity(customer_id: str, kind: str, props: Mapping[str, Any], ts: float | None) -> str:
    """An outcome event's identity in the shared log index."""
    body = orjson.dumps([customer_id, kind, dict(props), ts], option=orjson.OPT_SORT_KEYS)
    return "outcome:" + hashlib.blake2b(body, digest_size=16).hexdigest()
