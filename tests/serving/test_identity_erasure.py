"""Erasure through the identity links (real SQLite stores), and the decide body shapes."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.contact_rules import Contact
from serving.erasure import (
    ContactEraser,
    IdentityEraser,
    WorkspaceContactEraser,
    WorkspaceIdentityEraser,
    erase_with,
)
from serving.settings import Settings
from serving.state.contacts_sqlite import SQLiteContactStore
from serving.state.identity import SQLiteIdentityStore


def _contact(ts: float) -> Contact:
    return Contact(ts, "email", "a1", "discount", "")


def test_erasing_a_customer_erases_its_anonymous_ids_everywhere(tmp_path: Path) -> None:
    contacts = SQLiteContactStore(tmp_path / "contacts.db")
    links = SQLiteIdentityStore(tmp_path / "identity.db")
    try:
        links.link("anon-1", "c1")
        links.journal("anon-2", b"{}")
        links.link("anon-2", "c1")
        for who, ts in (("c1", 1.0), ("anon:anon-1", 2.0), ("anon:anon-2", 3.0), ("c2", 4.0)):
            contacts.record(who, f"k-{who}", _contact(ts))
        counts = erase_with([ContactEraser(contacts), IdentityEraser(links)], "c1")
        assert counts["identity_links"] == 2 and counts["anonymous_events"] == 1
        for who in ("c1", "anon:anon-1", "anon:anon-2"):
            assert contacts.read(who, 0.0, (), 10.0).history == (), who
        assert len(contacts.read("c2", 0.0, (), 10.0).history) == 1  # others untouched
        assert links.resolve("anon-1") is None and links.anonymous_ids("c1") == []
    finally:
        contacts.close()
        links.close()


def test_erasing_an_anonymous_id_forgets_its_link(tmp_path: Path) -> None:
    links = SQLiteIdentityStore(tmp_path / "identity.db")
    try:
        links.link("anon-1", "c1")
        assert erase_with([IdentityEraser(links)], "anon:anon-1")["identity_links"] == 1
        assert links.anonymous_ids("c1") == []
    finally:
        links.close()


def test_offline_erasure_follows_the_workspace_links(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, feature_source="memory")
    assert erase_with([WorkspaceIdentityEraser(settings)], "c1") == {}  # no identity.db yet
    links = SQLiteIdentityStore(tmp_path / "identity.db")
    contacts = SQLiteContactStore(settings.contacts_db)
    links.link("anon-9", "c9")
    contacts.record("anon:anon-9", "k", _contact(1.0))
    links.close()
    contacts.close()
    counts = erase_with(
        [WorkspaceContactEraser(settings), WorkspaceIdentityEraser(settings)], "c9"
    )
    assert counts["identity_links"] == 1
    check = SQLiteContactStore(settings.contacts_db)
    try:
        assert check.read("anon:anon-9", 0.0, (), 10.0).history == ()
    finally:
        check.close()


def test_decide_bodies_name_a_customer_an_anonymous_id_or_both() -> None:
    from pydantic import ValidationError

    from serving.api.fast_decode import DecideBody, decode_decide
    from serving.api.schemas import DecideRequest

    both = decode_decide(b'{"customer_id":"c1","anonymous_id":"d1"}')
    assert type(both) is DecideBody and both.anonymous_id == "d1"  # the fast path
    plain = decode_decide(b'{"customer_id":"c1"}')
    assert type(plain) is DecideBody and plain.anonymous_id is None
    anon = decode_decide(b'{"anonymous_id":"d1"}')
    assert type(anon) is DecideRequest and anon.customer_id is None
    with pytest.raises(ValidationError, match="customer_id or anonymous_id"):
        decode_decide(b'{"decision_point":"x"}')


def test_an_event_journaled_after_a_concurrent_identify_reaches_the_customer(
    tmp_path: Path,
) -> None:
    """Another process links the anonymous id between an event's profile lookup and its
    journal entry: the event is replayed onto the customer at once, not left orphaned."""
    from features.source import InMemoryFeatureSource
    from serving.service.feature_layer import FeatureEvent, InMemoryFeatureLayer
    from serving.service.identity import IdentityStage

    links = SQLiteIdentityStore(tmp_path / "identity.db")
    layer = InMemoryFeatureLayer(InMemoryFeatureSource())
    stage = IdentityStage(links, layer, None)
    try:
        assert stage.profile("anon-5") == ("anon:anon-5", False)
        event = FeatureEvent("anon:anon-5", "cart_updated", {"cart_value": 42.0}, 1_000.0)
        layer.ingest(event)
        other = SQLiteIdentityStore(tmp_path / "identity.db")  # another process's link
        other.link("anon-5", "c5")
        other.close()
        stage.journal("anon-5", event)
        assert layer.get("c5").values["cart_value"] == pytest.approx(42.0, abs=1e-9)
        assert links.take_journal("anon-5") == []
    finally:
        links.close()
