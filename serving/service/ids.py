"""Signed event ids: any replica can tell an id it issued, and its reward deadline, without
a lookup.

An event id is 44 lowercase hex characters::

    RRRRRRRRRRRRRRRR DDDDDDDDDDDD MMMMMMMMMMMMMMMM
    random (8 bytes)  deadline     BLAKE2b-64(key=secret, random ‖ deadline)
                      (ms since the epoch, 6 bytes)

The deadline is the end of the decision point's reward window, so ``/reward`` answers
``404`` for an id with a bad MAC (never issued by this workspace) and ``409`` after the
deadline, both before touching any storage. The tag is keyed BLAKE2b (RFC 7693, whose
keyed mode is a MAC by design) cut to 8 bytes: a forged id is a 2^-64 event. It costs a
third of OpenSSL's one-shot HMAC-SHA256 (RFC 2104) per decision; ids issued before the
change carry an HMAC-SHA256 tag, which :meth:`EventIdSigner.verify` still accepts so
rewards for decisions made before an upgrade are not lost.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

ID_LENGTH = 44


@dataclass(frozen=True, slots=True)
class EventId:
    value: str
    deadline: float  # seconds since the epoch


class EventIdSigner:
    """Issue and verify event ids with one workspace secret."""

    __slots__ = ("_blake_key", "_key")

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the event-id signing key must be at least 16 bytes")
        self._key = key
        # BLAKE2b takes keys of up to 64 bytes; a longer secret is hashed down to one
        self._blake_key = key if len(key) <= 64 else hashlib.blake2b(key).digest()

    def _mac(self, body: str) -> str:
        return hashlib.blake2b(body.encode(), key=self._blake_key, digest_size=8).hexdigest()

    def _legacy_mac(self, body: str) -> str:
        """The HMAC-SHA256 tag of ids issued before the BLAKE2b tag."""
        return hmac.digest(self._key, body.encode(), "sha256")[:8].hex()

    def issue(self, deadline: float, random: bytes | None = None) -> str:
        """A new id whose reward window ends at ``deadline`` (epoch seconds)."""
        rand = (random if random is not None else os.urandom(8)).hex()[:16].rjust(16, "0")
        body = f"{rand}{int(deadline * 1000) & 0xFFFFFFFFFFFF:012x}"
        return body + self._mac(body)

    def verify(self, event_id: str) -> EventId | None:
        """The parsed id when this workspace issued it, else ``None``."""
        if not isinstance(event_id, str) or len(event_id) != ID_LENGTH:
            return None
        body, mac = event_id[:28], event_id[28:]
        if not hmac.compare_digest(self._mac(body), mac) and not hmac.compare_digest(
            self._legacy_mac(body), mac
        ):
            return None
        try:
            deadline_ms = int(body[16:], 16)
        except ValueError:
            return None
        return EventId(event_id, deadline_ms / 1000.0)
