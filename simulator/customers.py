"""Simulated customers: observable features that evolve, and the hidden truth behind them.

Customers come from :func:`features.synthetic.generate_customers`, the generator
``maestro init`` loads into Feast, so the simulator's customer ``c-000042`` is the
served one. Each customer keeps

- ``features``: the observable feature row (what Feast serves), updated as the
  simulation goes: contact history counters per channel and window, consent,
  complaints, overdue invoices, tenure, session and cart;
- the latent preferences (``affinity`` per channel, ``offer`` taste,
  ``fatigue_sensitivity``, ``purchase_value``) that the simulator uses to draw
  outcomes and that no policy ever sees.

The engagement counters (``sends/opens/clicks_<channel>_<7d|30d>``,
``last_contact_<channel>_ts``) are recomputed from a per-channel contact history,
seeded from the generated counts, so they age out of their windows exactly.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from operator import attrgetter
from typing import Any

from core.compiled import compiled_or
from features.schema import CHANNELS
from features.synthetic import OFFERS, CustomerBase, generate_customers
from policies.contact_rules import Contact as PolicyContact
from policies.types import FeatureValue
from simulator.hidden_effects import CustomFeature

DAY = 86_400.0
WEEK = 7 * DAY
MONTH = 30 * DAY


def _plain(value: Any) -> FeatureValue:
    """NumPy scalars → Python scalars (``Context`` accepts only plain types)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:  # NaN from pandas
        return None
    return value  # type: ignore[no-any-return]


_COUNTER_KEYS: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
    (
        ch,
        (
            f"sends_{ch}_7d",
            f"opens_{ch}_7d",
            f"clicks_{ch}_7d",
            f"sends_{ch}_30d",
            f"opens_{ch}_30d",
            f"clicks_{ch}_30d",
            f"last_contact_{ch}_ts",
        ),
    )
    for ch in CHANNELS
)
_ZERO_COUNTERS: dict[str, dict[str, int]] = {
    ch: dict.fromkeys(keys[:6], 0) for ch, keys in _COUNTER_KEYS
}


@dataclass(slots=True)
class Contact:
    """One message sent on a channel: when, and whether it was opened and clicked."""

    ts: float
    opened: bool
    clicked: bool


@dataclass
class CustomerState:
    """One simulated customer: observable ``features`` plus hidden preferences."""

    index: int
    customer_id: str
    features: dict[str, FeatureValue]
    affinity: dict[str, float]
    offer_taste: dict[str, float]
    fatigue_sensitivity: float
    purchase_value: float
    device: str
    #: the world's custom feature values (:mod:`simulator.hidden_effects`), observable or not
    custom: dict[str, float] = field(default_factory=dict)
    history: dict[str, list[Contact]] = field(default_factory=dict)
    last_visit: float = 0.0
    churned: bool = False
    #: base churn risk before fatigue and complaints push it up
    base_churn_risk: float = 0.0
    #: every contact as the served contact policy records it (channel, action, offer,
    #: category), oldest first: what the catalog's caps, cool-downs and repetition count
    contact_log: list[PolicyContact] = field(default_factory=list)

    #: weighted count of messages in the last 7 days, as of the last :meth:`refresh`
    recent_contacts: float = 0.0
    #: per channel, as of the last :meth:`refresh`: (history list, its length, earliest
    #: time a contact leaves a window, weighted 7-day sends)
    _memo: dict[str, tuple[list[Contact] | None, int, float, float]] = field(
        default_factory=dict, repr=False, compare=False
    )
    #: per decision point, the customer's static response terms (see ``Economics``)
    terms: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def log_contact(self, action: Any, now: float, horizon: float) -> None:
        """Record a contact for the contact policy, dropping those past ``horizon`` seconds."""
        log = self.contact_log
        feats = action.features
        log.append(PolicyContact(now, action.channel, action.id, str(feats.get("offer") or ""),
                                 str(feats.get("category") or "")))
        if len(log) > 32 and log[0].ts <= now - horizon:
            self.contact_log = [c for c in log if c.ts > now - horizon]

    def contacts_7d(self, now: float) -> float:
        """Weighted count of messages in the last 7 days (in-app weighs 0.3: it is passive)."""
        total = 0.0
        for channel, contacts in self.history.items():
            weight = 0.3 if channel == "in_app" else 1.0
            total += weight * sum(1 for c in contacts if now - c.ts < WEEK)
        return total

    def refresh(self, now: float) -> None:
        """Recompute every engagement counter at ``now`` from the contact history.

        A channel whose history has not grown since the last refresh and none of whose
        contacts has left a window since (``now`` before the earliest expiry) keeps its
        counters: they are recomputed only when they can have changed.
        """
        _refresh(self, now, _COUNTER_KEYS, _ZERO_COUNTERS)


def refresh_py(
    state: CustomerState,
    now: float,
    counter_keys: tuple[tuple[str, tuple[str, ...]], ...] = _COUNTER_KEYS,
    zero_counters: dict[str, dict[str, int]] = _ZERO_COUNTERS,
) -> None:
    """:meth:`CustomerState.refresh`: the pure-Python twin of
    ``simulator._customers.refresh`` (compiled, same results)."""
    feats = state.features
    weighted = 0.0
    week_start, month_start = now - WEEK, now - MONTH
    history = state.history
    memo = state._memo
    for channel, keys in counter_keys:
        contacts = history.get(channel)
        size = len(contacts) if contacts else 0
        seen = memo.get(channel)
        if seen is not None and seen[0] is contacts and seen[1] == size and now < seen[2]:
            weighted += seen[3]  # nothing added, nothing expired: counters stand
            continue
        if not contacts:
            feats.update(zero_counters[channel])
            memo[channel] = (contacts, 0, math.inf, 0.0)
            continue
        if contacts[0].ts <= month_start:  # oldest first: something expired
            contacts = [c for c in contacts if c.ts > month_start]
            history[channel] = contacts
        s7 = o7 = k7 = o30 = k30 = 0
        last = 0.0
        expiry = math.inf  # when the first of these contacts leaves a window
        for c in contacts:
            o30 += c.opened
            k30 += c.clicked
            if c.ts > week_start:
                s7 += 1
                o7 += c.opened
                k7 += c.clicked
                leaves = c.ts + WEEK
            else:
                leaves = c.ts + MONTH
            if leaves < expiry:
                expiry = leaves
            if c.ts > last:
                last = c.ts
        s7k, o7k, k7k, s30k, o30k, k30k, lastk = keys
        feats[s7k], feats[o7k], feats[k7k] = s7, o7, k7
        feats[s30k], feats[o30k], feats[k30k] = len(contacts), o30, k30
        if contacts:
            feats[lastk] = last
        share = (0.3 if channel == "in_app" else 1.0) * s7
        memo[channel] = (contacts, len(contacts), expiry, share)
        weighted += share
    state.recent_contacts = weighted
    risk = state.base_churn_risk + 0.03 * weighted * state.fatigue_sensitivity
    risk += 0.15 if feats.get("open_complaint") else 0.0
    feats["churn_risk"] = round(min(max(risk, 0.0), 1.0), 4)


#: :func:`refresh_py`, compiled (``simulator._customers``) when it is built
_refresh = compiled_or("simulator._customers", "refresh", refresh_py)


def _count(value: FeatureValue) -> int:
    return int(value) if isinstance(value, (int, float)) else 0


#: per channel, the generated counters ``_seed_history`` reads: sends, opens, clicks
#: over 7 and 30 days
_SEED_KEYS: dict[str, tuple[str, ...]] = {
    ch: tuple(f"{m}_{ch}_{w}" for m in ("sends", "opens", "clicks") for w in ("7d", "30d"))
    for ch in CHANNELS
}
_BY_TS = attrgetter("ts")
_SPAN7, _SPAN30 = WEEK - 0.0, (MONTH - 1.0) - WEEK  # ``b - a`` of the two uniform draws


def _seed_history(
    rng: random.Random, feats: dict[str, FeatureValue], channel: str, now: float
) -> list[Contact]:
    """Contacts consistent with the generated counters (clamped where they disagree)."""
    get = feats.get
    s7k, s30k, o7k, o30k, c7k, c30k = _SEED_KEYS[channel]
    s7 = _count(get(s7k))
    s30 = max(_count(get(s30k)), s7)
    if not s30:
        return []
    o7 = min(_count(get(o7k)), s7)
    o30 = min(max(_count(get(o30k)) - o7, 0), s30 - s7)
    c7 = min(_count(get(c7k)), o7)
    c30 = min(max(_count(get(c30k)) - c7, 0), o30)
    rnd = rng.random  # rng.uniform(a, b) is a + (b - a) * rng.random(), written out
    out = [Contact(now - (0.0 + _SPAN7 * rnd()), i < o7, i < c7) for i in range(s7)]
    out += [Contact(now - (WEEK + _SPAN30 * rnd()), i < o30, i < c30) for i in range(s30 - s7)]
    out.sort(key=_BY_TS)  # oldest first; contacts are appended in time order
    return out


@dataclass(frozen=True)
class Latent:
    """One customer's hidden preferences (read-only, shared by every episode)."""

    affinity: dict[str, float]
    offer_taste: dict[str, float]
    fatigue_sensitivity: float
    purchase_value: float
    custom: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class BaseRows:
    """A generated customer base as plain Python rows, converted once and reused by
    every episode (``ids``, ``rows`` of observable features, ``latent``; row-aligned)."""

    ids: list[str]
    rows: list[dict[str, FeatureValue]]
    latent: list[Latent]

    @classmethod
    def from_base(cls, base: CustomerBase) -> BaseRows:
        feats = base.features.drop(columns=["event_timestamp"], errors="ignore")
        records: list[dict[str, Any]] = feats.to_dict("records")
        ids = [str(r.pop("customer_id")) for r in records]
        rows = [{k: _plain(v) for k, v in r.items()} for r in records]
        latent = [
            Latent(
                affinity={c: float(r[f"affinity_{c}"]) for c in CHANNELS},
                offer_taste={o: float(r[f"offer_{o}"]) for o in OFFERS},
                fatigue_sensitivity=float(r["fatigue_sensitivity"]),
                purchase_value=float(r["purchase_value"]),
            )
            for r in base.latent.to_dict("records")
        ]
        return cls(ids, rows, latent)

    def with_custom(
        self, features: Sequence[CustomFeature], seed: int, hidden: frozenset[str]
    ) -> BaseRows:
        """These customers with the world's custom feature values: in every customer's
        latent ``custom``, and in the observable rows unless the feature is ``hidden``."""
        columns = {f.name: f.values(len(self.ids), seed) for f in features}
        rows = [
            {**row, **{k: v[i] for k, v in columns.items() if k not in hidden}}
            for i, row in enumerate(self.rows)
        ]
        latent = [
            replace(lat, custom={k: float(v[i]) for k, v in columns.items()})
            for i, lat in enumerate(self.latent)
        ]
        return BaseRows(self.ids, rows, latent)


class Population:
    """The customer base of one simulation, built lazily per customer.

    Args:
        base: the generated customers (features and latent frames, row-aligned).
        seed: seeds the synthetic contact histories, one stream per customer.
        now: the simulation's start time, epoch seconds.
    """

    def __init__(self, base: CustomerBase | BaseRows, seed: int, now: float) -> None:
        self._base = base if isinstance(base, BaseRows) else BaseRows.from_base(base)
        self._rows = self._base.rows
        self._seed = seed
        self._now = now
        self._states: dict[int, CustomerState] = {}

    @classmethod
    def generate(cls, n: int, seed: int, now: float | None = None) -> Population:
        base = generate_customers(n, seed=seed, now=now)
        start = float(base.features["event_timestamp"].iloc[0].timestamp())
        return cls(base, seed, start)

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def start(self) -> float:
        return self._now

    def get(self, index: int) -> CustomerState:
        state = self._states.get(index)
        if state is None:
            state = self._build(index)
            self._states[index] = state
        return state

    def touched(self) -> list[CustomerState]:
        """The customers the simulation has met so far."""
        return list(self._states.values())

    def _build(self, index: int) -> CustomerState:
        feats = dict(self._rows[index])
        latent = self._base.latent[index]
        rng = random.Random(self._seed * 1_000_003 + index)
        state = CustomerState(
            index=index,
            customer_id=self._base.ids[index],
            features=feats,
            affinity=latent.affinity,
            offer_taste=latent.offer_taste,
            fatigue_sensitivity=latent.fatigue_sensitivity,
            purchase_value=latent.purchase_value,
            custom=dict(latent.custom),
            device="mobile" if rng.random() < 0.6 else "desktop",
            history={c: _seed_history(rng, feats, c, self._now) for c in CHANNELS},
            last_visit=self._now - rng.uniform(0.0, 3 * DAY),
            base_churn_risk=float(feats.get("churn_risk") or 0.0),  # type: ignore[arg-type]
        )
        state.refresh(self._now)
        return state
