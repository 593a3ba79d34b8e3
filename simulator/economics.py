"""The simulator's ground truth: how a customer responds to an action, and what it is worth.

For a decision point with natural outcome rate ``p0`` (the customer buys, pays,
stays or activates with no contact) and outcome value ``V``, an action on channel
``ch`` with offer ``o`` at local hour ``h`` has

    response = clip(ρ · affinity[ch] · (0.4 + taste(o)) · tod(ch, h) · fatigue · fit(dp, ch), 0, 1)
    fatigue  = exp(-κ · fatigue_sensitivity · contacts_7d)
    p        = p0 + (1 - p0) · max_uplift · response
    E[reward | action] = p · V · (1 - discount) - cost[ch] - p_complaint · complaint_cost
    E[reward | no_contact] = p0 · V

(``response`` is further multiplied by the hidden effects of the world's custom features,
when it has some: :mod:`simulator.hidden_effects`.)

so ``no_contact`` is the best action whenever the uplift does not pay for the
contact cost and the complaint risk (a fatigued or unresponsive customer). The
latent ``affinity`` and ``taste`` are tied to observable features (open and click
history per channel, segment, tier, cart value) by :mod:`features.synthetic`, so
a contextual policy can learn them. The realised reward draws the conversion and
the complaint from these very probabilities, so ``expected_reward`` is exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import numpy as np

from core.compiled import compiled_or
from policies.types import NO_CONTACT_ID, Action
from simulator.customers import CustomerState
from simulator.errors import InvalidSimulationConfig
from simulator.hidden_effects import CustomFeature, multiplier

VALUE_SOURCES = ("purchase", "cart", "retention", "invoice")

DEFAULT_CONTACT_COSTS: Mapping[str, float] = MappingProxyType(
    {
        "email": 0.05,
        "push": 0.03,
        "sms": 0.2,
        "in_app": 0.01,
        "whatsapp": 0.12,
        "call_center": 1.5,
        "agent": 0.0,
        "none": 0.0,
    }
)

#: offers outside the latent offer tastes: proxied to one of them, or a fixed appeal
_OFFER_PROXY: Mapping[str, str | float] = MappingProxyType(
    {
        "tip": "content",
        "tour": "content",
        "survey": 0.35,
        "assist": 0.55,
        "payment_plan": 0.7,
        "payment_link": 0.6,
        "retention_call": "loyalty",
        "none": 0.3,
    }
)


@lru_cache(maxsize=256)
def _offer_proxy(offer: object) -> str | float:
    proxy = _OFFER_PROXY.get(str(offer), str(offer))
    return float(proxy) if isinstance(proxy, (int, float)) else proxy


def time_of_day(channel: str, hour: int) -> float:
    """How receptive a customer is on ``channel`` at local ``hour`` (1.0 = normal)."""
    if channel in ("push", "whatsapp"):
        return 1.3 if 18 <= hour < 22 else (1.0 if 9 <= hour < 18 else 0.5)
    if channel == "sms":
        return 1.0 if 9 <= hour < 20 else 0.5
    if channel == "email":
        return 1.1 if 7 <= hour < 10 else (1.0 if 10 <= hour < 21 else 0.7)
    if channel == "call_center":
        return 1.0 if 9 <= hour < 18 else 0.3
    return 1.0


@dataclass(frozen=True)
class PointEconomics:
    """What one decision point's outcome is worth.

    ``value_source``: ``purchase`` (the customer's purchase value), ``cart`` (the cart
    value), ``retention`` (lifetime value kept) or ``invoice`` (the overdue amount).
    ``V = min(value_scale · base, value_cap)``; ``contact_costs`` override the global
    costs for this decision point.
    """

    natural_rate: float
    max_uplift: float
    value_source: str
    value_scale: float
    value_cap: float = 10.0
    channel_fit: Mapping[str, float] = field(default_factory=dict)
    contact_costs: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.natural_rate <= 1.0 or not 0.0 <= self.max_uplift <= 1.0:
            raise InvalidSimulationConfig("natural_rate and max_uplift must lie in [0, 1]")
        if self.value_source not in VALUE_SOURCES:
            raise InvalidSimulationConfig(
                f"value_source must be one of {VALUE_SOURCES}, got {self.value_source!r}"
            )
        if self.value_scale < 0 or any(c < 0 for c in self.contact_costs.values()):
            raise InvalidSimulationConfig("value_scale and contact costs must be >= 0")


DEFAULT_POINTS: Mapping[str, PointEconomics] = MappingProxyType(
    {
        "default": PointEconomics(0.03, 0.9, "purchase", 0.25, 8.0),
        "cart_abandoned": PointEconomics(0.1, 0.9, "cart", 0.2, 10.0, {"in_app": 1.4}),
        "churn_risk": PointEconomics(0.3, 0.9, "retention", 0.04, 10.0, {"call_center": 2.0}),
        "onboarding": PointEconomics(0.1, 0.9, "purchase", 0.2, 10.0, {"in_app": 1.3}),
        "billing_overdue": PointEconomics(0.15, 0.9, "invoice", 0.15, 10.0, {"call_center": 1.8}),
    }
)


@dataclass(frozen=True, slots=True)
class _ActionTerms:
    contact: bool
    channel: str
    taste: str | float
    fit: float
    cost: float
    keep: float
    p0: float
    uplift: float


@dataclass(frozen=True)
class Economics:
    """Costs and values of every decision point; reward = value − contact cost.

    ``fatigue_rate`` is κ above, ``response_scale`` is ρ; ``complaint_cost`` is
    charged when a contact makes the customer complain.
    """

    points: Mapping[str, PointEconomics] = field(default_factory=lambda: dict(DEFAULT_POINTS))
    contact_costs: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_CONTACT_COSTS))
    complaint_cost: float = 3.0
    fatigue_rate: float = 0.5
    response_scale: float = 3.0
    #: the world's custom features whose hidden effects scale the response
    #: (:mod:`simulator.hidden_effects`)
    custom_features: tuple[CustomFeature, ...] = ()
    _cache: dict[tuple[object, ...], _ActionTerms] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _tod: dict[tuple[str, ...], tuple[tuple[float, ...], ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _plans: dict[tuple[str, int], tuple[Any, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if "default" not in self.points:
            raise InvalidSimulationConfig("economics: a 'default' decision point is required")
        if any(c < 0 for c in self.contact_costs.values()) or self.complaint_cost < 0:
            raise InvalidSimulationConfig("economics: costs must be >= 0")

    def point(self, name: str) -> PointEconomics:
        return self.points.get(name) or self.points["default"]

    def cost(self, point: str, channel: str) -> float:
        override = self.point(point).contact_costs.get(channel)
        return float(override if override is not None else self.contact_costs.get(channel, 0.0))

    def value(self, point: str, customer: CustomerState) -> float:
        """``V``: the outcome's worth for this customer at this decision point."""
        econ = self.point(point)
        feats = customer.features
        match econ.value_source:
            case "cart":
                cart = float(feats.get("cart_value") or 0.0)  # type: ignore[arg-type]
                base = cart if cart > 0 else customer.purchase_value
            case "retention":
                base = float(feats.get("lifetime_value") or 0.0)  # type: ignore[arg-type]
            case "invoice":
                days = float(feats.get("days_overdue") or 0.0)  # type: ignore[arg-type]
                base = customer.purchase_value * (1.0 + days / 30.0)
            case _:
                base = customer.purchase_value
        return min(econ.value_scale * base, econ.value_cap)

    def fatigue(self, customer: CustomerState, now: float) -> float:
        load = customer.fatigue_sensitivity * customer.recent_contacts
        return math.exp(-self.fatigue_rate * load)

    def complaint_prob(self, customer: CustomerState, now: float) -> float:
        """P(a contact makes the customer complain); grows with recent contacts."""
        return min(0.003 + 0.02 * customer.fatigue_sensitivity * customer.recent_contacts, 0.5)

    def _terms(self, point: str, action: Action) -> _ActionTerms:
        """The customer-independent parts of an action's economics (memoised)."""
        key = (point, action.id, action.channel)  # an id names one catalog action
        terms = self._cache.get(key)
        if terms is None:
            econ = self.point(point)
            terms = _ActionTerms(
                contact=not (action.id == NO_CONTACT_ID or action.channel == "none"),
                channel=action.channel,
                taste=_offer_proxy(action.features.get("offer")),
                fit=self.response_scale * econ.channel_fit.get(action.channel, 1.0),
                cost=self.cost(point, action.channel),
                keep=1.0 - self.discount(action),
                p0=econ.natural_rate,
                uplift=econ.max_uplift,
            )
            self._cache[key] = terms
        return terms

    def response(
        self, point: str, customer: CustomerState, action: Action, hour: int, fatigue: float
    ) -> float:
        t = self._terms(point, action)
        taste = t.taste if isinstance(t.taste, float) else customer.offer_taste.get(t.taste, 0.3)
        affinity = customer.affinity.get(t.channel, 0.3)
        base = t.fit * affinity * (0.4 + taste)
        if self.custom_features:  # same order as ``_static``: the same bits
            base *= multiplier(self.custom_features, customer.custom, action)
        resp = base * time_of_day(t.channel, hour) * fatigue
        return min(max(resp, 0.0), 1.0)

    def conversion_prob(
        self, point: str, customer: CustomerState, action: Action, hour: int, fatigue: float
    ) -> float:
        t = self._terms(point, action)
        if not t.contact:
            return t.p0
        response = self.response(point, customer, action, hour, fatigue)
        return t.p0 + (1.0 - t.p0) * t.uplift * response

    def discount(self, action: Action) -> float:
        pct = action.features.get("discount_pct")
        return float(pct) / 100.0 if isinstance(pct, (int, float)) else 0.0

    def expected_rewards(
        self, point: str, customer: CustomerState, actions: Sequence[Action], hour: int, now: float
    ) -> list[float]:
        """The exact expected reward of each of ``actions`` (see the module docstring)."""
        return self.truth(point, customer, actions, hour, now)[0].tolist()  # type: ignore[no-any-return]

    def truth(
        self, point: str, customer: CustomerState, actions: Sequence[Action], hour: int, now: float
    ) -> tuple[np.ndarray, list[float]]:
        """``(expected reward, conversion probability)`` of each of ``actions``: an array
        of shape ``(n_actions,)`` and a list of the same length. The formulas of the
        module docstring, with the customer's static part (channel fit × affinity ×
        offer taste) computed once per decision point; same operations in the same order
        as :meth:`conversion_prob`, so the values are bit-identical to the scalar path's.
        (A plain loop: for ~10 actions NumPy's per-call overhead costs more.)"""
        terms = customer.terms.get(point)
        if terms is None or terms.actions is not actions:
            terms = customer.terms[point] = self._static(point, customer, actions)
        fatigue = self.fatigue(customer, now)
        value = self.value(point, customer)
        complaint = self.complaint_prob(customer, now) * self.complaint_cost
        return truth_loop(terms.rows, terms.tod[hour], fatigue, value, complaint)

    def _static(
        self, point: str, customer: CustomerState, actions: Sequence[Action]
    ) -> _CustomerTerms:
        key = (point, id(actions))
        plan = self._plans.get(key)
        if plan is None or plan[0] is not actions:
            if len(self._plans) > 1_000:
                self._plans.clear()
            plan = self._plans[key] = self._plan(point, actions)  # holds actions: id stays unique
        affinity, tastes = customer.affinity, customer.offer_taste
        rows = []
        for contact, channel, taste, fit, gain, p0, keep, cost in plan[1]:
            if taste.__class__ is not float:
                taste = tastes.get(taste, 0.3)
            base = fit * affinity.get(channel, 0.3) * (0.4 + taste) if contact else 0.0
            rows.append((contact, base, gain, p0, keep, cost))
        if self.custom_features:
            rows = [
                (r[0], r[1] * multiplier(self.custom_features, customer.custom, a), *r[2:])
                for r, a in zip(rows, actions, strict=True)
            ]
        return _CustomerTerms(actions, tuple(rows), plan[2])

    def _plan(self, point: str, actions: Sequence[Action]) -> tuple[object, tuple[Any, ...], Any]:
        """The customer-independent part of :meth:`_static` for ``actions`` at ``point``:
        per action (contact, channel, taste, fit, (1 - p0) · max_uplift, p0, keep, cost),
        and the time-of-day factors of every hour."""
        terms = [self._terms(point, a) for a in actions]
        per_action = tuple(
            (t.contact, t.channel, t.taste, t.fit, (1.0 - t.p0) * t.uplift, t.p0, t.keep, t.cost)
            for t in terms
        )
        channels = tuple(a.channel for a in actions)
        tod = self._tod.get(channels)
        if tod is None:
            tod = self._tod[channels] = tuple(
                tuple(time_of_day(ch, h) for ch in channels) for h in range(24)
            )
        return actions, per_action, tod


def truth_loop_py(
    rows: tuple[tuple[bool, float, float, float, float, float], ...],
    tod: tuple[float, ...],
    fatigue: float,
    value: float,
    complaint: float,
) -> tuple[np.ndarray, list[float]]:
    """Expected reward (array) and conversion probability (list) of each row of
    :class:`_CustomerTerms` at one hour's time-of-day factors ``tod``. The pure-Python
    twin of ``simulator._economics.truth_loop`` (compiled, same bits)."""
    out: list[float] = []
    conv: list[float] = []
    for (contact, base, gain, p0, keep, cost), t in zip(rows, tod, strict=True):
        if contact:
            p = p0 + gain * min(max(base * t * fatigue, 0.0), 1.0)
            conv.append(p)
            out.append(p * value * keep - cost - complaint)
        else:
            conv.append(p0)
            out.append(p0 * value)
    return np.array(out, dtype=np.float64), conv


#: :func:`truth_loop_py`, compiled (``simulator._economics``) when it is built
truth_loop = compiled_or("simulator._economics", "truth_loop", truth_loop_py)


@dataclass(frozen=True, slots=True)
class _CustomerTerms:
    """One customer's static economics at one decision point, row-aligned with ``actions``:
    ``rows`` of (contact, fit · affinity · (0.4 + taste), (1 - p0) · max_uplift, p0,
    1 - discount, contact cost); ``tod[hour]`` the time-of-day factor of each action."""

    actions: Sequence[Action]
    rows: tuple[tuple[bool, float, float, float, float, float], ...]
    tod: tuple[tuple[float, ...], ...]
