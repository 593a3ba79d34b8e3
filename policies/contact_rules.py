"""The contact policy: frequency caps, cool-downs, offer repetition and budgets, counted from
a customer's contact history in true sliding windows.

A contact (:class:`Contact`) is one message sent to a customer: when, on which channel, which
action and offer, of which category. :class:`ContactRules` reads a customer's recent contacts
(newest last or in any order) and says which candidate actions they forbid, with the
machine-readable reasons ``cap:<channel|any>:<window>``, ``cooldown:<window>`` and
``repeat:<offer>:<window>``. A window is any duration written ``<n>m``, ``<n>h``, ``<n>d`` or
``<n>w`` (``24h``, ``7d``, ``30d``): a contact at time ``t`` counts at ``now`` while
``now - t < window``.

Budgets (:class:`Budget`) cap how many times one action is chosen per day, ISO week or
campaign; :func:`budget_period_key` names the current period so every process and replica
counts the same bucket.

This module is pure: the history itself is kept by the serving layer's contact store.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from policies.errors import CatalogError
from policies.types import CHANNELS, NO_CONTACT_ID, Action, Exclusion

_UNITS = {"m": 60.0, "h": 3600.0, "d": 86_400.0, "w": 7 * 86_400.0}
_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*$")
#: channels whose actions never contact the customer (no contact history, no caps)
NON_CONTACT_CHANNELS = frozenset({"none", "agent"})
BUDGET_PERIODS = ("day", "week", "campaign")


def window_seconds(window: str) -> float:
    """The duration ``window`` names (``48h`` → 172800.0); ``CatalogError`` when malformed."""
    match = _WINDOW.match(str(window))
    if match is None or float(match.group(1)) <= 0:
        raise CatalogError(f"window {window!r}: expected a positive <n>m, <n>h, <n>d or <n>w")
    return float(match.group(1)) * _UNITS[match.group(2)]


def contacts_customer(action: Action) -> bool:
    """Whether choosing ``action`` sends the customer something (not ``no_contact``, not an
    agent routing): only those are recorded, capped and budgeted."""
    return action.id != NO_CONTACT_ID and action.channel not in NON_CONTACT_CHANNELS


class Contact(NamedTuple):
    """One contact in a customer's history.

    ``ts`` epoch seconds; ``offer`` and ``category`` as the action's features name them
    (empty string when unknown).
    """

    ts: float
    channel: str
    action_id: str
    offer: str
    category: str


def _categories(value: Iterable[str] | None) -> frozenset[str] | None:
    return None if value is None else frozenset(str(c) for c in value)


@dataclass(frozen=True, slots=True)
class FrequencyCap:
    """At most ``max`` contacts on ``channel`` (``any``: every channel) within ``window``,
    counting only contacts of ``categories`` when given."""

    channel: str
    window: str
    max: int
    categories: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.channel != "any" and self.channel not in CHANNELS:
            raise CatalogError(f"frequency cap: unknown channel {self.channel!r}")
        if not isinstance(self.max, int) or self.max < 0:
            raise CatalogError("frequency cap: max must be an integer >= 0")
        window_seconds(self.window)
        object.__setattr__(self, "categories", _categories(self.categories))

    @property
    def feature(self) -> str:
        """The legacy customer feature of this cap (readable, no longer what caps count)."""
        return f"sends_{self.channel}_{self.window}"

    @property
    def reason(self) -> str:
        return f"cap:{self.channel}:{self.window}"


@dataclass(frozen=True, slots=True)
class Cooldown:
    """No contact of ``categories`` (all when ``None``) within ``window`` of the last one."""

    window: str
    categories: frozenset[str] | None = None

    def __post_init__(self) -> None:
        window_seconds(self.window)
        object.__setattr__(self, "categories", _categories(self.categories))


@dataclass(frozen=True, slots=True)
class Budget:
    """At most ``max`` choices of one action per ``per`` (``day``/``week`` in UTC, or the
    whole ``campaign``)."""

    max: int
    per: str = "campaign"

    def __post_init__(self) -> None:
        if not isinstance(self.max, int) or self.max < 0:
            raise CatalogError("budget: max must be an integer >= 0")
        if self.per not in BUDGET_PERIODS:
            raise CatalogError(f"budget: per must be one of {', '.join(BUDGET_PERIODS)}")

    @classmethod
    def from_config(cls, entry: Mapping[str, Any]) -> Budget:
        extra = set(entry) - {"max", "per"}
        if extra:
            raise CatalogError(f"budget: unknown keys {sorted(extra)}")
        return cls(max=entry["max"], per=str(entry.get("per", "campaign")))

    def reason(self, action_id: str) -> str:
        return f"budget:{action_id}:{self.per}"


def budget_period_key(action_id: str, per: str, now: float) -> str:
    """The bucket of ``action_id``'s budget at ``now``: ``<id>:day:<UTC day number>``,
    ``<id>:week:<Monday's UTC day number>`` or ``<id>:campaign``."""
    if per == "campaign":
        return f"{action_id}:campaign"
    day = int(now // 86_400)
    if per == "day":
        return f"{action_id}:day:{day}"
    return f"{action_id}:week:{day - (day + 3) % 7}"  # 1970-01-01 was a Thursday


def _caps(entries: Iterable[Mapping[str, Any]]) -> tuple[FrequencyCap, ...]:
    caps = []
    for entry in entries:
        extra = set(entry) - {"channel", "window", "max", "categories"}
        if extra:
            raise CatalogError(f"frequency cap: unknown keys {sorted(extra)}")
        caps.append(FrequencyCap(entry["channel"], str(entry["window"]), entry["max"],
                                 entry.get("categories")))
    return tuple(caps)


@dataclass(frozen=True)
class ContactRules:
    """The contact policy of one decision point (see the module docstring).

    Parameters
    ----------
    caps: tuple of FrequencyCap
    cooldowns: tuple of Cooldown
    offer_repeat: str, optional
        The same offer is not sent again within this window (``None``: no rule).
    """

    caps: tuple[FrequencyCap, ...] = ()
    cooldowns: tuple[Cooldown, ...] = ()
    offer_repeat: str | None = None

    def __post_init__(self) -> None:
        if self.offer_repeat is not None:
            window_seconds(self.offer_repeat)
        # (seconds, max, channel or None for any, categories, reason) precomputed once
        object.__setattr__(self, "_caps", tuple(
            (window_seconds(c.window), c.max, None if c.channel == "any" else c.channel,
             c.categories, c.reason)
            for c in self.caps
        ))
        object.__setattr__(self, "_cooldowns", tuple(
            (window_seconds(c.window), c.categories, f"cooldown:{c.window}")
            for c in self.cooldowns
        ))
        repeat = None if self.offer_repeat is None else window_seconds(self.offer_repeat)
        object.__setattr__(self, "_repeat", repeat)
        spans = [c[0] for c in self._caps] + [c[0] for c in self._cooldowns]  # type: ignore[attr-defined]
        object.__setattr__(self, "_horizon", max([*spans, repeat or 0.0], default=0.0))
        object.__setattr__(self, "_active", bool(self.caps or self.cooldowns or repeat))

    @classmethod
    def from_config(
        cls,
        caps: Iterable[Mapping[str, Any]] | None,
        cooldowns: Iterable[Mapping[str, Any]] | None,
        offer_repeat: str | None,
    ) -> ContactRules:
        """From the catalog's ``frequency_caps``, ``cooldowns`` and ``offer_repeat``."""
        downs = []
        for entry in cooldowns or ():
            extra = set(entry) - {"window", "categories"}
            if extra:
                raise CatalogError(f"cooldown: unknown keys {sorted(extra)}")
            downs.append(Cooldown(str(entry["window"]), entry.get("categories")))
        return cls(_caps(caps or ()), tuple(downs),
                   None if offer_repeat is None else str(offer_repeat))

    @property
    def active(self) -> bool:
        """Whether any rule here reads the history."""
        return self._active  # type: ignore[attr-defined,no-any-return]

    @property
    def horizon_seconds(self) -> float:
        """The longest window: older contacts never matter."""
        return self._horizon  # type: ignore[attr-defined,no-any-return]

    def reason(self, action: Action, history: Sequence[Contact], now: float) -> str | None:
        """Why the history forbids ``action`` at ``now``, or ``None``."""
        return self._verdict(action, self._tally(history, now))

    def _tally(
        self, history: Sequence[Contact], now: float
    ) -> tuple[list[bool], list[bool], frozenset[str]]:
        """What the history says once per decision, whatever the action: each cap reached,
        each cool-down running, and the offers sent within the repetition window."""
        full = []
        for seconds, limit, channel, categories, _ in self._caps:  # type: ignore[attr-defined]
            since = now - seconds
            n = sum(
                1 for c in history
                if c.ts > since and (channel is None or c.channel == channel)
                and (categories is None or c.category in categories)
            )
            full.append(n >= limit)
        running = [
            any(c.ts > now - seconds and (categories is None or c.category in categories)
                for c in history)
            for seconds, categories, _ in self._cooldowns  # type: ignore[attr-defined]
        ]
        repeat = self._repeat  # type: ignore[attr-defined]
        offers = frozenset(
            c.offer for c in history if repeat is not None and c.ts > now - repeat
        )
        return full, running, offers

    def _verdict(
        self, action: Action, tally: tuple[list[bool], list[bool], frozenset[str]]
    ) -> str | None:
        if not contacts_customer(action):
            return None
        full, running, offers = tally
        channel = action.channel
        category = action.features.get("category")
        for reached, (_, _, cap_channel, categories, why) in zip(
            full, self._caps, strict=True  # type: ignore[attr-defined]
        ):
            if reached and (cap_channel is None or cap_channel == channel) and (
                categories is None or category in categories
            ):
                return why
        for on, (_, categories, why) in zip(
            running, self._cooldowns, strict=True  # type: ignore[attr-defined]
        ):
            if on and (categories is None or category in categories):
                return why
        offer = action.features.get("offer")
        if offers and offer not in (None, "", "none") and offer in offers:
            return f"repeat:{offer}:{self.offer_repeat}"
        return None

    def split(
        self,
        eligible: Sequence[Action],
        history: Sequence[Contact],
        now: float | None = None,
        exhausted: Mapping[str, str] | None = None,
    ) -> tuple[list[Action], list[Exclusion]]:
        """Move the actions the history (or an exhausted budget: ``exhausted`` maps action id
        to its reason) forbids out of ``eligible``.

        Returns
        -------
        eligible: list of Action, in their input order
        excluded: list of Exclusion, each with its reason
        """
        now = time.time() if now is None else now
        tally = self._tally(history, now) if self.active else None
        keep: list[Action] = []
        out: list[Exclusion] = []
        for action in eligible:
            why = exhausted.get(action.id) if exhausted else None
            if why is None and tally is not None:
                why = self._verdict(action, tally)
            if why is None:
                keep.append(action)
            else:
                out.append(Exclusion(action.id, why))
        return keep, out
