"""A contact-centre routing world: cases, agents with hidden skill-by-case effectiveness,
capacity that fills and drains, and a continuity bonus — in the journey environment's
shape, so routing policies are compared by exact regret like the rest.

Each step one case arrives (a customer of a fixed population, a required skill, the
customer's language; technical cases need a level-2 agent). The candidates are every
agent of the roster as ``agent`` actions (skills, level, languages, current load,
capacity, and — as serving computes it — ``continuity``: 1 for the agent who served this
customer last); the ``agent_routing`` decision point's rules split them (skill, level,
language, capacity, retention-only for VIP / high churn-risk customers). When no agent
is eligible the case waits: the clock runs on until one frees up.

Hidden truth, per agent: a resolution logit per skill and per customer segment, a speed
(handle-time multiplier); a busier agent resolves a little less often. Serving the
customer again (continuity) raises the resolution logit by ``continuity_bonus``, shortens
the handle time and lifts CSAT. The reward is :class:`policies.routing.RoutingReward`
(linear in resolved, handle minutes and CSAT), so the *expected* reward of every agent is
exact and :class:`simulator.run.RunLog`'s regret is exact. The chosen case occupies its
agent for its realised handle time, so load evolves with the router's choices.

References:
    Gans, Koole & Mandelbaum, *Telephone Call Centers: Tutorial, Review, and Research
    Prospects*, M&SOM 5(2), 2003. Saito et al., *Open Bandit Dataset and Pipeline*, 2021
    (simulators that carry the true expected reward of every action).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from policies.base import BasePolicy
from policies.catalog import Catalog, load_catalog
from policies.registry import make_policy
from policies.routing import LAST_AGENT, RoutingReward, with_continuity
from policies.types import Action, Context, Decision, FeatureValue
from simulator.environment import Observation, Outcome, StepResult
from simulator.errors import InvalidDecision, InvalidSimulationConfig, NotReset, SimulatorError
from simulator.run import run_policy

DECISION_POINT = "agent_routing"
SKILLS = ("billing", "technical", "sales")
LANGUAGES = ("en", "es", "fr")
SEGMENTS = ("new", "casual", "loyal", "at_risk", "bargain_hunter")
TIERS = ("standard", "silver", "gold", "vip")
BASE_MINUTES = {"billing": 8.0, "technical": 14.0, "sales": 6.0}
EPOCH = 1_767_225_600.0  # the journey simulator's clock start


@dataclass(frozen=True)
class RoutingConfig:
    """Settings of one routing world. ``agent_seed`` fixes the roster and its hidden
    effectiveness; the episode seed of :meth:`RoutingEnvironment.reset` drives arrivals
    and outcomes. ``continuity_feature=False`` hides continuity from the policy (no
    ``last_agent_id`` in the request, no ``continuity`` feature) to measure its worth."""

    agents: int = 12
    customers: int = 300
    agent_seed: int = 11
    skill_spread: float = 1.0
    segment_spread: float = 0.4
    continuity_bonus: float = 0.8
    load_penalty: float = 0.4
    arrivals_per_minute: float = 2.0
    continuity_feature: bool = True
    reward: RoutingReward = field(default_factory=RoutingReward)
    catalog_path: str | None = None

    def __post_init__(self) -> None:
        if self.agents < 3 or self.agents % 3:
            raise InvalidSimulationConfig("agents must be a positive multiple of 3",
                                          field="agents")
        if self.customers < 1:
            raise InvalidSimulationConfig("customers must be >= 1", field="customers")
        if self.arrivals_per_minute <= 0:
            raise InvalidSimulationConfig("arrivals_per_minute must be > 0")


@dataclass(frozen=True)
class Agent:
    """One agent: what the router sees (skills, level, languages, capacity) and, hidden,
    ``skill_logit`` (per skill), ``segment_logit`` (per segment) and ``speed``."""

    id: str
    skills: tuple[str, ...]
    level: int
    languages: tuple[str, ...]
    capacity: int
    skill_logit: dict[str, float]
    segment_logit: dict[str, float]
    speed: float


def make_roster(config: RoutingConfig) -> list[Agent]:
    """A roster covering every (skill, language) pair with qualified agents, retention
    included. Agents come in three language groups (en only; en+es; en+fr) of
    ``agents/3``; within a group the skill sets rotate so each skill has at least two
    agents, technical ones mostly at level 2, and a third of them hold ``retention``."""
    rng = np.random.default_rng([config.agent_seed, 7])
    patterns: list[tuple[tuple[str, ...], int]] = [
        (("billing", "technical", "retention"), 2),
        (("technical", "sales"), 1),
        (("sales", "billing"), 1),
        (("billing", "technical", "sales", "retention"), 2),
        (("technical", "sales", "retention"), 2),
        (("billing", "sales"), 1),
    ]
    roster: list[Agent] = []
    for i in range(config.agents):
        group, k = i % 3, i // 3
        skills, level = patterns[k % len(patterns)]
        languages = ("en",) if group == 0 else ("en", LANGUAGES[group])
        roster.append(Agent(
            id=f"agent-{i:02d}", skills=skills, level=level, languages=languages,
            capacity=int(rng.integers(2, 6)),
            skill_logit={s: float(rng.normal(0.0, config.skill_spread)) for s in SKILLS},
            segment_logit={s: float(rng.normal(0.0, config.segment_spread)) for s in SEGMENTS},
            speed=float(math.exp(rng.normal(0.0, 0.25))),
        ))
    return roster


@dataclass(frozen=True)
class RoutingStep(StepResult):
    """A :class:`StepResult` with the interaction's outcome (``outcome.converted`` is
    ``resolved``) and the chosen agent's true resolution probability."""

    resolved: bool = False
    handle_minutes: float = 0.0
    csat: float = 0.0
    resolution_prob: float = 0.0
    best_resolution_prob: float = 0.0
    continuity: bool = False


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


class RoutingEnvironment:
    """The routing world (see the module docstring); ``reset``/``step`` as Gymnasium's."""

    def __init__(self, config: RoutingConfig | None = None, catalog: Catalog | None = None):
        self.config = config or RoutingConfig()
        self.catalog = catalog or load_catalog(self.config.catalog_path)
        if DECISION_POINT not in self.catalog:
            raise InvalidSimulationConfig(f"catalog lacks the {DECISION_POINT!r} decision point")
        self.rules = self.catalog[DECISION_POINT].rules
        self.roster = make_roster(self.config)
        self._by_id = {a.id: a for a in self.roster}
        self._obs: Observation | None = None
        self._truth: np.ndarray | None = None
        self._probs: np.ndarray | None = None
        self.history: list[RoutingStep] = []

    # ------------------------------------------------------------------ protocol
    def reset(self, seed: int | None = None) -> Observation:
        seed = 0 if seed is None else int(seed)
        cfg = self.config
        rng = np.random.default_rng([seed, 0, cfg.customers])
        n = cfg.customers
        self._customers: list[dict[str, FeatureValue]] = [
            {
                "segment": str(rng.choice(SEGMENTS)),
                "tier": str(rng.choice(TIERS, p=(0.5, 0.25, 0.17, 0.08))),
                "churn_risk": round(float(rng.beta(2, 5)), 3),
                "language": str(rng.choice(LANGUAGES, p=(0.6, 0.25, 0.15))),
            }
            for _ in range(n)
        ]
        self._last_agent: dict[int, str] = {}
        self._busy: dict[str, list[float]] = {a.id: [] for a in self.roster}  # end minutes
        self._arrivals = np.random.default_rng([seed, 1])
        self._outcomes = np.random.default_rng([seed, 2])
        self.minute = 0.0
        self.t = 0
        self.waited_minutes = 0.0
        self.history = []
        self._observe()
        assert self._obs is not None
        return self._obs

    @property
    def observation(self) -> Observation:
        if self._obs is None:
            raise NotReset("call reset() before step()")
        return self._obs

    def expected_rewards(self) -> np.ndarray:
        """True expected reward of every candidate agent, shape ``(n_agents,)``."""
        if self._truth is None:
            raise NotReset("call reset() first")
        return self._truth.copy()

    def step(self, decision: Decision) -> RoutingStep:
        """Assign the case to ``decision.action`` (an eligible agent)."""
        obs = self.observation
        assert self._truth is not None and self._probs is not None
        if decision.action is None:
            raise InvalidDecision("a routed case needs an agent", field="action_id")
        wanted = decision.action.id
        if wanted not in {a.id for a in obs.eligible}:
            raise InvalidDecision(f"agent {wanted!r} is not eligible for this case",
                                  field="action_id")
        chosen = next(i for i, a in enumerate(obs.candidates) if a.id == wanted)
        action = obs.candidates[chosen]
        agent = self._by_id[wanted]
        elig = obs.eligible_index
        best = int(elig[np.argmax(self._truth[elig])])
        cont = self._served_last(agent.id)
        prob = float(self._probs[chosen])
        rng = self._outcomes
        resolved = bool(rng.random() < prob)
        mean_minutes = self._mean_minutes(agent, cont)
        minutes = float(rng.gamma(4.0, mean_minutes / 4.0))
        csat = 2.2 + 2.0 * resolved + (0.4 if cont else 0.0) + float(rng.normal(0.0, 0.5))
        reward = self.config.reward(resolved, minutes, csat)
        self._busy[agent.id].append(self.minute + minutes)
        self._last_agent[self._customer_index] = agent.id
        truth = self._truth
        result = RoutingStep(
            observation=obs, action=action, chosen=chosen, reward=reward,
            expected_rewards=truth, optimal_value=float(truth[best]),
            optimal_action=obs.candidates[best].id, outcome=Outcome(converted=resolved),
            events=(), next_observation=obs, resolved=resolved, handle_minutes=minutes,
            csat=csat, resolution_prob=prob, best_resolution_prob=float(np.max(
                self._probs[elig])), continuity=cont,
        )
        self.t += 1
        self.minute += 1.0 / self.config.arrivals_per_minute
        self._observe()
        result = _with_next(result, self.observation)
        self.history.append(result)
        return result

    # ------------------------------------------------------------------ truth
    def _served_last(self, agent_id: str) -> bool:
        return self._last_agent.get(self._customer_index) == agent_id

    def _mean_minutes(self, agent: Agent, cont: bool) -> float:
        return BASE_MINUTES[self._skill] * agent.speed * (0.8 if cont else 1.0)

    def _load(self, agent_id: str) -> int:
        ends = self._busy[agent_id]
        if ends and min(ends) <= self.minute:
            ends[:] = [e for e in ends if e > self.minute]
        return len(ends)

    def resolution_prob(self, agent: Agent, load: int, cont: bool) -> float:
        """True probability that ``agent`` (at ``load``) resolves the current case."""
        segment = str(self._customers[self._customer_index]["segment"])
        x = (agent.skill_logit[self._skill] + agent.segment_logit[segment]
             - self.config.load_penalty * load / agent.capacity
             + (self.config.continuity_bonus if cont else 0.0))
        return _sigmoid(x)

    # ------------------------------------------------------------------ arrivals
    def _case(self) -> tuple[int, str]:
        rng = self._arrivals
        return int(rng.integers(self.config.customers)), str(
            rng.choice(SKILLS, p=(0.4, 0.35, 0.25)))

    def _observe(self) -> None:
        cfg = self.config
        self._customer_index, self._skill = self._case()
        for _ in range(100_000):
            obs = self._build()
            if obs.eligible:
                self._obs = obs
                return
            ends = [e for v in self._busy.values() for e in v if e > self.minute]
            if not ends:  # nobody busy and still nobody qualified: a different case
                self._customer_index, self._skill = self._case()
                continue
            nxt = min(ends) + 1e-9  # the case waits in the queue until an agent frees up
            self.waited_minutes += nxt - self.minute
            self.minute = nxt
        raise SimulatorError(f"no agent could take a case after 100000 tries ({cfg})")

    def _build(self) -> Observation:
        i, skill = self._customer_index, self._skill
        customer = self._customers[i]
        request: dict[str, FeatureValue] = {
            "required_skill": skill,
            "required_level": 2 if skill == "technical" else 1,
            "language": customer["language"],
        }
        last = self._last_agent.get(i)
        if self.config.continuity_feature and last is not None:
            request[LAST_AGENT] = last
        context = Context(f"c-{i:06d}", customer, request, DECISION_POINT,
                          EPOCH + 60.0 * self.minute)
        loads = [self._load(a.id) for a in self.roster]
        candidates: list[Action] = [
            Action(a.id, "agent", {
                "skills": ",".join(a.skills), "level": a.level,
                "languages": ",".join(a.languages), "load": load, "capacity": a.capacity,
            })
            for a, load in zip(self.roster, loads, strict=True)
        ]
        if self.config.continuity_feature:
            candidates = with_continuity(context, candidates)
        eligible, excluded = self.rules.split(context, candidates)
        probs = np.array([self.resolution_prob(a, load, last == a.id)
                          for a, load in zip(self.roster, loads, strict=True)])
        reward = self.config.reward
        truth = np.array([
            reward(p, self._mean_minutes(a, last == a.id),
                   2.2 + 2.0 * p + (0.4 if last == a.id else 0.0))
            for a, p in zip(self.roster, probs, strict=True)
        ])
        self._probs, self._truth = probs, truth
        return Observation(self.t, context, tuple(candidates), tuple(eligible), tuple(excluded))


def _with_next(result: RoutingStep, nxt: Observation) -> RoutingStep:
    return replace(result, next_observation=nxt)


def routing_summary(env: RoutingEnvironment, tail: float = 0.5) -> dict[str, Any]:
    """Resolution figures of the episode ``env`` just ran (``history``): realised and true
    expected resolution rate, over all steps and over the last ``tail`` share of them, the
    share of cases that went back to the same agent, minutes waited per case."""
    h = env.history
    n = len(h)
    if n == 0:
        return {"steps": 0}
    resolved = np.array([r.resolved for r in h], dtype=float)
    probs = np.array([r.resolution_prob for r in h])
    best = np.array([r.best_resolution_prob for r in h])
    start = int(n * (1.0 - tail))
    return {
        "steps": n,
        "resolution_rate": float(resolved.mean()),
        "expected_resolution_rate": float(probs.mean()),
        "final_expected_resolution_rate": float(probs[start:].mean()),
        "best_expected_resolution_rate": float(best.mean()),
        "mean_handle_minutes": float(np.mean([r.handle_minutes for r in h])),
        "mean_csat": float(np.mean([r.csat for r in h])),
        "continuity_rate": float(np.mean([r.continuity for r in h])),
        "waited_minutes_per_case": env.waited_minutes / n,
    }


def build_router(kind: str, seed: int = 0) -> BasePolicy:
    """A routing policy of any registered kind: ``least-busy`` is the ACD baseline,
    ``uniform`` random assignment among qualified agents."""
    return make_policy(kind, seed=seed)


def compare_routers(
    kinds: Sequence[str], config: RoutingConfig | None = None, steps: int = 3000,
    seed: int = 0, learn_every: int = 32,
) -> dict[str, dict[str, Any]]:
    """Run each router on the same routing world (same episode seed): kind → the run's
    :meth:`RunLog.summary` figures (reward, exact regret) merged with
    :func:`routing_summary`'s resolution figures."""
    out: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        env = RoutingEnvironment(config)
        log = run_policy(build_router(kind, seed), env, steps, seed, learn_every)
        summary = log.summary()
        keep = ("mean_reward", "mean_expected_reward", "regret", "mean_regret",
                "final_mean_regret", "optimal_rate", "steps_per_second")
        out[kind] = {**{k: summary[k] for k in keep}, **routing_summary(env)}
    return out


def customer_rows(env: RoutingEnvironment) -> dict[str, dict[str, FeatureValue]]:
    """The routing world's customers as feature rows by id (to load into a live
    Maestro's feature store so its rules see the customers the simulator does)."""
    return {f"c-{i:06d}": dict(row) for i, row in enumerate(env._customers)}
