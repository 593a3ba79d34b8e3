"""The delivery-time re-check: is a triggered decision still worth sending?

Between the trigger and the delivery (a retry can be minutes later) the customer may have
bought, withdrawn consent, or been contacted elsewhere. Before each attempt the request is
cancelled, with the reason logged and counted, when:

- an event its ``cancel_on`` names was noted for the customer after the trigger
  (``event:<type>``);
- its channel needs consent (the decision point's ``consent_channels``) and the customer's
  ``consent_<channel>`` feature is no longer true (``no_consent:<channel>``);
- the decision point's caps, cool-downs or offer repetition now forbid it, counted over the
  customer's contact history without the decision's own contact (``cap:…``, ``cooldown:…``,
  ``repeat:…``).
"""

from __future__ import annotations

from typing import Any

from policies.catalog import Catalog, DecisionPoint
from policies.contact_rules import NON_CONTACT_CHANNELS, Contact
from policies.rule_records import truthy
from policies.types import Action
from serving.delivery.outbox import Outbox
from serving.delivery.ports import DeliveryRequest
from serving.service.ids import EventIdSigner
from serving.state.contacts import ContactStore

#: how close (seconds) a history entry's time must be to the decision's to be its own
#: contact (event ids carry the decision time to the millisecond)
OWN_CONTACT_SLACK = 0.002


class DeliveryCheck:
    """Answers why a request should no longer be sent, or ``None`` (module docstring).

    ``features`` is the service's feature source (``get(customer_id).values``); ``contacts``
    its contact store (None: no contact policy); ``signer`` tells the decision's time from
    its event id.
    """

    def __init__(
        self,
        outbox: Outbox,
        catalog: Catalog,
        features: Any,
        contacts: ContactStore | None,
        signer: EventIdSigner | None,
    ) -> None:
        self.outbox = outbox
        self.catalog = catalog
        self.features = features
        self.contacts = contacts
        self.signer = signer

    def reason(self, request: DeliveryRequest, now: float) -> str | None:
        """Why ``request`` is moot at ``now``, or ``None`` to send it."""
        seen = self.outbox.cancelling_event(request)
        if seen is not None:
            return f"event:{seen}"
        channel = request.channel
        point = self.catalog.decision_points.get(request.decision_point)
        if channel is None or channel in NON_CONTACT_CHANNELS or point is None:
            return None
        if channel in point.rules.consent_channels:
            granted = self.features.get(request.customer_id).values.get(f"consent_{channel}")
            if not (granted is True or (granted is not False and truthy(granted))):
                return f"no_consent:{channel}"
        return self._contact_policy(request, point, channel, now)

    def _contact_policy(
        self, request: DeliveryRequest, point: DecisionPoint, channel: str, now: float
    ) -> str | None:
        rules = point.rules.contact
        if self.contacts is None or not rules.active:
            return None
        action_id = str(request.decision.get("action_id") or "")
        action = next((a for a in point.actions if a.id == action_id), None)
        if action is None:
            action = Action(action_id or "unknown", channel)
        history = self.contacts.read(request.customer_id, now - rules.horizon_seconds,
                                     [], now).history
        decided = self._decided_at(request, point)
        own = next((c for c in history if _is_own(c, action, decided)), None)
        if own is not None:
            history = tuple(c for c in history if c is not own)
        return rules.reason(action, history, now)

    def _decided_at(self, request: DeliveryRequest, point: DecisionPoint) -> float | None:
        event_id = str(request.decision.get("event_id") or request.delivery_id)
        parsed = None if self.signer is None else self.signer.verify(event_id)
        return None if parsed is None else parsed.deadline - point.reward_window_seconds


def _is_own(contact: Contact, action: Action, decided: float | None) -> bool:
    return (
        decided is not None
        and contact.action_id == action.id
        and contact.channel == action.channel
        and abs(contact.ts - decided) <= OWN_CONTACT_SLACK
    )
