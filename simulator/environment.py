"""A journey environment in Gymnasium's shape, with Open Bandit Pipeline's ground truth.

``reset(seed=)`` returns the first :class:`Observation`; ``step(decision)`` plays
the decision's action for the customer of the current observation and returns a
:class:`StepResult` with the realised reward, the *true expected reward of every
candidate action*, the optimal eligible action's value and the next observation.
Regret and any policy's true value are therefore exact, not estimated.

Each step one customer visits (uniformly among those who have not churned); what
happened to them since their last visit is simulated first (complaints opened or
closed, invoices overdue or paid, a new session and possibly a cart), then the
decision point follows from their state: ``billing_overdue`` when an invoice is
overdue, ``cart_abandoned`` with a cart, ``onboarding`` in the first 30 days,
``churn_risk`` when the churn risk is high, else ``default``. Candidate actions are
the catalog's, split by the decision point's :class:`policies.rules.RuleSet`
(rules always apply). Contacts then shape the future: they fill the engagement
counters the rules cap, fatigue lowers response, over-contact makes customers
withdraw consent, complain and churn.

Two random streams keep comparisons fair: one draws arrivals and life events,
the other outcomes, so two policies run with the same seed meet the same
customers in the same order for as long as their actions leave them alike.

References:
    Towers et al., *Gymnasium: A Standard Interface for Reinforcement Learning
    Environments* (2024). Saito et al., *Open Bandit Dataset and Pipeline*, NeurIPS
    Datasets and Benchmarks (2021).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from features.synthetic import PAGES, generate_customers
from policies.catalog import Catalog, load_catalog
from policies.rules import local_hour
from policies.types import NO_CONTACT_ID, Action, Context, Decision, FeatureValue, trusted
from simulator.customers import DAY, BaseRows, Contact, CustomerState, Population
from simulator.draws import Draws
from simulator.economics import Economics
from simulator.errors import InvalidDecision, InvalidSimulationConfig, NotReset, SimulatorError
from simulator.hidden_effects import CustomFeature
from simulator.records import (
    EVENT_FIELDS,
    OBSERVATION_FIELDS,
    OUTCOME_FIELDS,
    STEP_FIELDS,
    Environment,
    Observation,
    Outcome,
    SimEvent,
    StepResult,
)

__all__ = [
    "DECISION_POINTS",
    "EnvConfig",
    "Environment",
    "JourneyEnvironment",
    "Observation",
    "Outcome",
    "SimEvent",
    "StepResult",
]

DECISION_POINTS = ("default", "cart_abandoned", "churn_risk", "onboarding", "billing_overdue")


@dataclass(frozen=True)
class EnvConfig:
    """Settings of one simulated world.

    ``customer_seed`` seeds the customer base (``maestro init``'s seed, so the
    simulated customers are the served ones); the episode seed given to
    :meth:`JourneyEnvironment.reset` drives everything that happens to them.
    """

    customers: int = 1_000
    customer_seed: int = 7
    visits_per_customer_per_day: float = 1.5
    churn_risk_threshold: float = 0.45
    economics: Economics = field(default_factory=Economics)
    catalog_path: str | None = None
    #: the world's custom features and their hidden effects (``simulation.yaml``)
    custom_features: tuple[CustomFeature, ...] = ()
    #: custom features the world has but contexts do not carry (never declared)
    hidden: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.customers < 1:
            raise InvalidSimulationConfig("customers must be >= 1", field="customers")
        unknown = sorted(self.hidden - {f.name for f in self.custom_features})
        if unknown:
            raise InvalidSimulationConfig(f"hidden: {unknown[0]} is not a custom feature")
        if not 0 < self.visits_per_customer_per_day <= 1_000:
            raise InvalidSimulationConfig("visits_per_customer_per_day must lie in (0, 1000]")

    @property
    def seconds_per_step(self) -> float:
        return DAY / (self.visits_per_customer_per_day * self.customers)


@lru_cache(maxsize=4)
def _customer_base(
    n: int, seed: int, custom: tuple[CustomFeature, ...] = (), hidden: frozenset[str] = frozenset()
) -> BaseRows:
    if custom:
        return _customer_base(n, seed).with_custom(custom, seed, hidden)
    return BaseRows.from_base(generate_customers(n, seed=seed))


class JourneyEnvironment:
    """The customer-journey world (see the module docstring)."""

    def __init__(self, config: EnvConfig | None = None, catalog: Catalog | None = None) -> None:
        self.config = config or EnvConfig()
        self.catalog = catalog or load_catalog(self.config.catalog_path)
        self.economics = self.config.economics
        if self.config.custom_features:
            self.economics = replace(
                self.economics, custom_features=self.config.custom_features
            )
        missing = [p for p in DECISION_POINTS if p not in self.catalog]
        if missing:
            raise InvalidSimulationConfig(f"catalog lacks decision points {missing}")
        self._pop: Population | None = None
        self._obs: Observation | None = None
        self._truth: np.ndarray | None = None
        self._conversion: list[float] | None = None
        self._customer: CustomerState | None = None
        self._positions: dict[str, int] = {}
        self._eligible_idx: list[int] = []
        self._index_of: dict[str, tuple[tuple[Action, ...], dict[str, int]]] = {}
        self._hours: dict[tuple[FeatureValue, int], int] = {}
        self._seconds_per_step = self.config.seconds_per_step
        self._hour = 0
        #: contacts older than every decision point's longest contact window are dropped
        points = self.catalog.decision_points.values()
        self._horizon = max(p.rules.contact.horizon_seconds for p in points)

    # ------------------------------------------------------------------ protocol
    def reset(self, seed: int | None = None) -> Observation:
        """Start an episode: fresh customers, clock at the generator's epoch."""
        seed = 0 if seed is None else int(seed)
        cfg = self.config
        self._pop = Population(
            _customer_base(cfg.customers, cfg.customer_seed, cfg.custom_features, cfg.hidden),
            seed,
            now=1_767_225_600.0,
        )
        # scalar draws from these generators' streams (compiled: no per-call NumPy overhead)
        self._arrivals = Draws(np.random.default_rng([seed, 0]))
        self._outcomes = Draws(np.random.default_rng([seed, 1]))
        self.now = self._pop.start
        self.t = 0
        self._observe()
        assert self._obs is not None
        return self._obs

    @property
    def observation(self) -> Observation:
        if self._obs is None:
            raise NotReset("call reset() before step()")
        return self._obs

    def expected_rewards(self) -> np.ndarray:
        """True expected reward of every candidate of the current observation."""
        if self._truth is None:
            raise NotReset("call reset() first")
        return self._truth.copy()

    def step(self, decision: Decision) -> StepResult:
        """Play ``decision.action`` (any candidate; ``None`` means ``no_contact``)."""
        obs = self.observation
        assert self._truth is not None and self._customer is not None
        wanted = NO_CONTACT_ID if decision.action is None else decision.action.id
        chosen = self._positions.get(wanted, -1)
        if chosen < 0:
            raise InvalidDecision(
                f"action {wanted!r} is not a candidate of {obs.decision_point!r}", field="action_id"
            )
        action = obs.candidates[chosen]
        truth = self._truth
        values = truth.tolist()
        elig = self._eligible_idx
        best = max(elig, key=values.__getitem__) if elig else chosen  # first of the maxima
        customer = self._customer
        assert self._conversion is not None
        outcome, reward = self._draw(
            obs.decision_point, customer, action, self._outcomes, self._conversion[chosen]
        )
        events = self._apply(obs.decision_point, customer, action, outcome)
        self.t += 1
        self.now += self._seconds_per_step
        self._observe()
        optimal, optimal_id, nxt = values[best], obs.candidates[best].id, self._obs
        # StepResult(...) without the frozen __init__'s per-field calls
        parts = (obs, action, chosen, reward, truth, optimal, optimal_id, outcome, events, nxt)
        return trusted(StepResult, STEP_FIELDS, (*parts, False, False))

    # ------------------------------------------------------------------ dynamics
    def _draw(
        self,
        point: str,
        c: CustomerState,
        action: Action,
        rng: Draws | np.random.Generator,
        p: float | None = None,
    ) -> tuple[Outcome, float]:
        """Draw the customer's response to ``action`` (no state changes); ``p``, when
        given, is its conversion probability (from :meth:`Economics.truth`)."""
        econ, now = self.economics, self.now
        fatigue = econ.fatigue(c, now)
        if p is None:
            p = econ.conversion_prob(point, c, action, self._hour, fatigue)
        value = econ.value(point, c)
        converted = bool(rng.random() < p)
        if action.id == NO_CONTACT_ID or action.channel == "none":
            reward = value if converted else 0.0
            complained = opened = clicked = unsubscribed = churned = False
        else:
            ch = action.channel
            complained = bool(rng.random() < econ.complaint_prob(c, now))
            reward = value * (1.0 - econ.discount(action)) if converted else 0.0
            reward -= econ.cost(point, ch) + (econ.complaint_cost if complained else 0.0)
            aff = c.affinity.get(ch, 0.3)
            opened = bool(rng.random() < min(aff * 0.9 + 0.05, 1.0) * fatigue)
            clicked = opened and bool(rng.random() < aff * 0.6)
            sends_ch = sum(1 for x in c.history.get(ch, ()) if now - x.ts < 7 * DAY)
            unsubscribed = (
                bool(rng.random() < 0.002 + 0.04 * c.fatigue_sensitivity * max(0, sends_ch - 1))
                and ch != "in_app"
            )
            churned = bool(
                rng.random()
                < 0.0005
                + 0.004 * c.fatigue_sensitivity * max(0.0, c.recent_contacts - 3)
                + (0.01 if complained else 0.0)
            )
        if not converted and point == "churn_risk" and rng.random() < 0.25:
            churned = True
        outcome = trusted(
            Outcome, OUTCOME_FIELDS, (converted, opened, clicked, complained, unsubscribed, churned)
        )
        return outcome, reward

    def _apply(
        self, point: str, c: CustomerState, action: Action, outcome: Outcome
    ) -> tuple[SimEvent, ...]:
        """Update the customer's state after ``outcome``; the events it produced."""
        feats, events = c.features, []
        if action.id != NO_CONTACT_ID and action.channel != "none":
            ch = action.channel
            c.history.setdefault(ch, []).append(Contact(self.now, outcome.opened, outcome.clicked))
            c.log_contact(action, self.now, self._horizon)
            if outcome.opened:
                events.append(self._event(c, "message_opened", {"channel": ch}))
            if outcome.clicked:
                events.append(self._event(c, "message_clicked", {"channel": ch}))
            if outcome.unsubscribed and feats.get(f"consent_{ch}"):
                feats[f"consent_{ch}"] = False
                events.append(self._event(c, "consent_changed", {"channel": ch, "granted": False}))
            if outcome.complained and not feats.get("open_complaint"):
                feats["open_complaint"] = True
                feats["open_tickets"] = int(feats.get("open_tickets") or 0) + 1  # type: ignore[arg-type]
                events.append(self._event(c, "complaint_opened", {}))
        if outcome.converted:
            events.extend(self._convert(point, c, self.economics.value(point, c)))
        c.churned = c.churned or outcome.churned  # counters are refreshed at the next visit
        return tuple(events)

    def sample_rewards(self, action_id: str, n: int, seed: int = 0) -> np.ndarray:
        """``n`` independent realised rewards of ``action_id`` for the current observation,
        drawn exactly as :meth:`step` draws them, without changing any state (for checking
        the true expected rewards against empirical means). Shape ``(n,)``."""
        obs = self.observation
        assert self._pop is not None
        action = next((a for a in obs.candidates if a.id == action_id), None)
        if action is None:
            raise InvalidDecision(f"{action_id!r} is not a candidate", field="action_id")
        c = self._pop.get(_index(obs.customer_id))
        rng = np.random.default_rng(seed)
        return np.array([self._draw(obs.decision_point, c, action, rng)[1] for _ in range(n)])

    def _convert(self, point: str, c: CustomerState, value: float) -> list[SimEvent]:
        feats = c.features
        if point == "billing_overdue":
            feats["overdue_invoice"], feats["days_overdue"] = False, 0
            return [self._event(c, "invoice_paid", {})]
        if point == "churn_risk":
            c.base_churn_risk *= 0.6
            return []
        feats["cart_value"] = 0.0
        feats["lifetime_value"] = round(float(feats.get("lifetime_value") or 0.0) + value, 2)  # type: ignore[arg-type]
        return [self._event(c, "purchase", {"value": round(value, 2)})]

    def _event(self, c: CustomerState, kind: str, props: dict[str, FeatureValue]) -> SimEvent:
        return trusted(SimEvent, EVENT_FIELDS, (c.customer_id, kind, props, self.now))

    def _arrive(self) -> CustomerState:
        assert self._pop is not None
        n = len(self._pop)
        for _ in range(10 * n + 100):
            c = self._pop.get(self._arrivals.integers(n))
            if not c.churned:
                return c
        raise SimulatorError("every simulated customer has churned")

    def _life_events(self, c: CustomerState) -> list[SimEvent]:
        """What happened to ``c`` between their last visit and now (a session starts)."""
        rng, now, feats = self._arrivals, self.now, c.features
        days = max(now - c.last_visit, 0.0) / DAY
        c.last_visit = now
        events: list[SimEvent] = []
        tenure = int(feats.get("tenure_days") or 0) + int(days)  # type: ignore[arg-type]
        feats["tenure_days"] = tenure
        if feats.get("open_complaint"):
            if rng.random() < 1 - math.exp(-0.3 * days):
                feats["open_complaint"] = False
                feats["open_tickets"] = max(int(feats.get("open_tickets") or 0) - 1, 0)  # type: ignore[arg-type]
                events.append(self._event(c, "complaint_closed", {}))
        elif rng.random() < 1 - math.exp(
            -days * (0.004 + 0.01 * c.fatigue_sensitivity * c.recent_contacts)
        ):
            feats["open_complaint"] = True
            feats["open_tickets"] = int(feats.get("open_tickets") or 0) + 1  # type: ignore[arg-type]
            events.append(self._event(c, "complaint_opened", {}))
        if feats.get("overdue_invoice"):
            feats["days_overdue"] = int(feats.get("days_overdue") or 0) + int(days)  # type: ignore[arg-type]
            if rng.random() < 1 - math.exp(-0.05 * days):
                feats["overdue_invoice"], feats["days_overdue"] = False, 0
                events.append(self._event(c, "invoice_paid", {}))
        elif rng.random() < 1 - math.exp(
            -days * (0.004 if feats.get("tier") == "standard" else 0.0015)
        ):
            feats["overdue_invoice"], feats["days_overdue"] = True, 1
            events.append(self._event(c, "invoice_overdue", {"days_overdue": 1}))
        page = PAGES[rng.integers(len(PAGES))]
        cart_p = 0.35 + (0.15 if feats.get("segment") == "bargain_hunter" else 0.0)
        if rng.random() < cart_p:
            cart = round(rng.lognormal(math.log(max(c.purchase_value, 1.0)), 0.5), 2)
            page = "cart" if rng.random() < 0.6 else "checkout"
        else:
            cart = 0.0
        feats.update(
            last_page=page,
            session_pages=rng.integers(1, 15),
            cart_value=cart,
            rapid_clicks=rng.poisson(0.3),
            last_event_ts=now,
        )
        events.append(self._event(c, "page_view", {"page": page}))
        events.append(self._event(c, "cart_updated", {"cart_value": cart}))
        c.refresh(now)
        return events

    def _decision_point(self, c: CustomerState) -> str:
        f = c.features
        if f.get("overdue_invoice"):
            return "billing_overdue"
        if float(f.get("cart_value") or 0.0) > 0:  # type: ignore[arg-type]
            return "cart_abandoned"
        if int(f.get("tenure_days") or 0) < 30:  # type: ignore[arg-type]
            return "onboarding"
        if float(f.get("churn_risk") or 0.0) >= self.config.churn_risk_threshold:  # type: ignore[arg-type]
            return "churn_risk"
        return "default"

    def _observe(self) -> None:
        c = self._arrive()
        events = self._life_events(c)
        point = self._decision_point(c)
        feats = c.features
        self._hour = hour = self._local_hour(feats.get("timezone"))
        request: dict[str, FeatureValue] = {
            "page": feats.get("last_page") or "home",
            "device": c.device,
            "cart_value": feats.get("cart_value") or 0.0,
            "local_hour": hour,
        }
        # The simulator's own plain rows (checked when the base is built), so the
        # per-feature check of ``Context`` is skipped; the copy is the decision's snapshot.
        context = Context.trusted(c.customer_id, dict(feats), request, point, self.now)
        dp = self.catalog[point]
        candidates = dp.actions
        eligible, excluded = dp.rules.split(context, candidates)
        if dp.rules.contact.active and c.contact_log:  # the served contact policy, same code
            eligible, more = dp.rules.contact.split(eligible, c.contact_log, self.now)
            excluded = excluded + more
        positions = self._index_of.get(point)
        if positions is None or positions[0] is not candidates:
            positions = self._index_of[point] = (
                candidates,
                {a.id: i for i, a in enumerate(candidates)},
            )
        self._positions = positions[1]
        self._eligible_idx = [positions[1][a.id] for a in eligible]
        self._customer = c
        self._obs = trusted(
            Observation,
            OBSERVATION_FIELDS,
            (self.t, context, candidates, tuple(eligible), tuple(excluded), tuple(events)),
        )
        self._truth, self._conversion = self.economics.truth(point, c, candidates, hour, self.now)

    def _local_hour(self, timezone: FeatureValue) -> int:
        """:func:`policies.rules.local_hour`, memoised per time zone and quarter hour (UTC
        offsets and their changes fall on quarter hours, so the hour is constant within)."""
        key = (timezone, int(self.now // 900.0))
        hour = self._hours.get(key)
        if hour is None:
            if len(self._hours) > 50_000:
                self._hours.clear()
            hour = self._hours[key] = local_hour(self.now, timezone)
        return hour


def _index(customer_id: str) -> int:
    return int(customer_id.rsplit("-", 1)[1])
