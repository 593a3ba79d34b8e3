"""The delivery-time re-check over the real contact store and the shipped catalog: the
decision's own contact never cancels it, contacts made since the trigger do; consent read
now, not at decide time; a noted cancelling event wins; no-contact decisions pass."""

from __future__ import annotations

from pathlib import Path

from features.source import InMemoryFeatureSource
from policies.catalog import load_catalog
from policies.contact_rules import Contact
from serving.delivery.ports import DeliveryRequest
from serving.delivery.recheck import DeliveryCheck
from serving.service.ids import EventIdSigner
from serving.state.contacts import outside_key
from serving.state.contacts_sqlite import SQLiteContactStore
from serving.state.outbox_sqlite import SQLiteOutbox

T0 = 1_700_000_000.0


def setup(tmp_path: Path, consent: bool = True) -> tuple[DeliveryCheck, SQLiteContactStore,
                                                          EventIdSigner, SQLiteOutbox]:
    catalog = load_catalog()
    signer = EventIdSigner(b"k" * 32)
    store = SQLiteContactStore(tmp_path / "contacts.db")
    box = SQLiteOutbox(tmp_path / "d.db", clock=lambda: T0)
    features = InMemoryFeatureSource({"c1": {"consent_sms": consent, "consent_email": True}})
    return DeliveryCheck(box, catalog, features, store, signer), store, signer, box


def sms_request(signer: EventIdSigner, window: float) -> DeliveryRequest:
    event_id = signer.issue(T0 + window)
    return DeliveryRequest(event_id, "t", "hook", "c1", "default",
                           {"event_id": event_id, "action_id": "sms_offer", "channel": "sms"},
                           T0, "sms", ("purchase",))


def test_own_contact_is_not_counted_later_ones_are(tmp_path: Path) -> None:
    check, store, signer, _ = setup(tmp_path)
    window = load_catalog()["default"].reward_window_seconds
    req = sms_request(signer, window)
    store.record("c1", req.delivery_id, Contact(T0, "sms", "sms_offer", "discount", "marketing"))
    other = Contact(T0 + 10, "sms", "", "", "")
    store.record("c1", outside_key("c1", other), other)
    assert check.reason(req, T0 + 20) is None  # own + 1 outside: 1 other of the cap of 2
    again = Contact(T0 + 15, "sms", "", "", "")
    store.record("c1", outside_key("c1", again), again)
    assert check.reason(req, T0 + 20) == "cap:sms:7d"


def test_consent_is_read_at_delivery_time(tmp_path: Path) -> None:
    check, _, signer, _ = setup(tmp_path, consent=False)
    req = sms_request(signer, 3600.0)
    assert check.reason(req, T0 + 1) == "no_consent:sms"
    no_contact = DeliveryRequest("x", "t", "hook", "c1", "default", {"action_id": "no_contact"},
                                 T0, None)
    assert check.reason(no_contact, T0 + 1) is None


def test_a_noted_cancelling_event_wins(tmp_path: Path) -> None:
    check, _, signer, box = setup(tmp_path)
    req = sms_request(signer, 3600.0)
    box.enqueue(req)
    [item] = box.lease(1, 30.0, "w")  # in flight: note_event cannot cancel it, the check does
    assert box.note_event("c1", "purchase", T0 + 5) == 0
    assert check.reason(item.request, T0 + 6) == "event:purchase"
