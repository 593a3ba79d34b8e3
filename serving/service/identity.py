"""Identity stitching: anonymous visitors' events and decisions, and ``identify``.

An event or decision may name an ``anonymous_id`` (device, cookie) instead of a
``customer_id``. :meth:`IdentityStage.profile` picks the profile it acts on: the customer the
anonymous id is linked to, else the anonymous id's own profile (its session features,
contacts and consent are stored under it, so a first ``/decide`` works on the defaults and
that session's features). Anonymous events are journaled in the shared
:class:`~serving.state.identity.IdentityStore`.

``identify`` (``customer_id`` + ``properties.anonymous_id``) links the two once, then
merges: the journaled events are replayed onto the customer's profile with their own
timestamps (so counters add up and a consent given or withdrawn while anonymous holds),
and the anonymous contact history is moved to the customer's. From then on events and
decisions naming the anonymous id act on the customer. Requests without an anonymous id
never reach this module.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any

import orjson

from features.errors import InvalidEventError
from serving.service.feature_layer import FeatureEvent, FeatureWriter
from serving.state.contacts import ContactStore
from serving.state.identity import MAX_ANONYMOUS_ID, IdentityStore, anonymous_profile


def _anonymous_id(properties: Mapping[str, Any]) -> str:
    anon = properties.get("anonymous_id")
    if not isinstance(anon, str) or not anon or len(anon) > MAX_ANONYMOUS_ID or not (
        anon.isprintable()
    ):
        raise InvalidEventError(
            f"properties.anonymous_id must be a printable string of 1 to {MAX_ANONYMOUS_ID} "
            "characters",
            field="properties.anonymous_id",
        )
    return anon


class IdentityStage:
    """Resolves anonymous ids, journals anonymous events and merges on ``identify``."""

    def __init__(
        self, store: IdentityStore, writer: FeatureWriter, contacts: ContactStore | None
    ) -> None:
        self.store = store
        self.writer = writer
        self.contacts = contacts

    def profile(self, anonymous_id: str) -> tuple[str, bool]:
        """The profile id an anonymous id acts on (its linked customer, else its own
        ``anon:`` profile), and whether it is a linked customer's."""
        owner = self.store.resolve(anonymous_id)
        return (anonymous_profile(anonymous_id), False) if owner is None else (owner, True)

    def journal(self, anonymous_id: str, event: FeatureEvent) -> None:
        """Keep an event written under the anonymous profile for a later ``identify``. An
        ``identify`` (in any process) that took the journal between this event's
        :meth:`profile` and now would miss it: the link is read again, and if it is there
        now, what is journaled is replayed onto the customer at once."""
        self.store.journal(anonymous_id, orjson.dumps({
            "type": event.type, "properties": dict(event.properties), "ts": event.timestamp,
        }))
        owner = self.store.resolve(anonymous_id)
        if owner is not None:
            self._replay(anonymous_id, owner)

    def identify(self, customer_id: str, properties: Mapping[str, Any]) -> dict[str, Any]:
        """Link ``properties.anonymous_id`` to ``customer_id`` and merge its history; an id
        already linked to another customer stays linked there (``linked_to`` says so)."""
        anon = _anonymous_id(properties)
        if customer_id.startswith("anon:"):
            raise InvalidEventError(
                "identify: customer_id must not be an anonymous profile (anon:…)",
                field="customer_id",
            )
        owner = self.store.link(anon, customer_id)
        replayed = moved = 0
        if owner == customer_id:
            replayed = self._replay(anon, customer_id)
            moved = self._move_contacts(anon, customer_id)
        return {"linked_to": owner, "replayed_events": replayed, "moved_contacts": moved}

    def _replay(self, anon: str, customer_id: str) -> int:
        """Apply the anonymous id's journaled events to the customer, at their own times."""
        events = self.store.take_journal(anon)
        for raw in events:
            e = orjson.loads(raw)
            self.writer.ingest(FeatureEvent(customer_id, e["type"], e["properties"], e["ts"]))
        return len(events)

    def _move_contacts(self, anon: str, customer_id: str) -> int:
        """Copy the anonymous contact history to the customer's, then forget it."""
        store = self.contacts
        if store is None:
            return 0
        profile = anonymous_profile(anon)
        history = store.read(profile, 0.0, (), time.time()).history
        for contact in history:
            digest = hashlib.sha256(f"{anon}\x1f{contact!r}".encode()).hexdigest()[:24]
            store.record(customer_id, f"m-{digest}", contact)
        if history:
            store.erase_customer(profile)
        return len(history)
