"""Run policies in the simulator, in process, learning online as they go.

Each step the policy decides among the eligible actions (rules first, exactly as
serving does, through :func:`policies.draw.decide_among`), the environment
plays the action, and every ``learn_every`` steps the policy learns from the
batch of logged feedback. The :class:`RunLog` keeps, per step, the decision
point, the chosen action and channel, its logged probability, the realised
reward and the true expected rewards, so cumulative reward, regret and the
channel mix over time are exact.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from policies.base import BasePolicy
from policies.catalog import Catalog
from policies.draw import decide_among, seed_from_event_id
from policies.registry import make_policy
from policies.types import Action, Context, LoggedBatch
from simulator.environment import Environment
from simulator.errors import InvalidSimulationConfig


@dataclass
class RunLog:
    """Per-step record of one policy's run, ``n_rounds`` steps.

    - ``decision_points``, ``action_ids``, ``channels``: shape ``(n_rounds,)``, str.
    - ``probabilities``: logged probability of the chosen action, shape ``(n_rounds,)``.
    - ``rewards``: realised rewards; ``expected``: true expected reward of the chosen
      action; ``optimal``: true value of the best eligible action; all ``(n_rounds,)``.
    - ``batch``/``truths`` (when kept): the logged bandit feedback, and for each round
      the true expected reward of each eligible action, shape ``(n_eligible,)``.
    """

    policy: str
    decision_points: np.ndarray
    action_ids: np.ndarray
    channels: np.ndarray
    probabilities: np.ndarray
    rewards: np.ndarray
    expected: np.ndarray
    optimal: np.ndarray
    seconds: float = 0.0
    batch: LoggedBatch | None = None
    truths: list[np.ndarray] | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def regret(self) -> np.ndarray:
        """Per-step regret against the best eligible action, shape ``(n_rounds,)``."""
        return self.optimal - self.expected

    def channel_mix(self, windows: int = 20) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Share of each channel per window of steps: (window end steps, channel → shares)."""
        n = len(self)
        windows = max(1, min(windows, n))
        edges = np.linspace(0, n, windows + 1).astype(int)
        mix: dict[str, np.ndarray] = {}
        for ch in sorted(set(self.channels.tolist())):
            hit = (self.channels == ch).astype(float)
            mix[ch] = np.array(
                [hit[a:b].mean() if b > a else 0.0 for a, b in itertools.pairwise(edges)]
            )
        return edges[1:], mix

    def summary(self) -> dict[str, Any]:
        """The figures ``report.json`` holds for this policy."""
        n = len(self)
        regret = self.regret
        tail = slice(int(n * 0.8), n)
        by_dp: dict[str, dict[str, float]] = {}
        for dp in sorted(set(self.decision_points.tolist())):
            m = self.decision_points == dp
            by_dp[dp] = {
                "n": int(m.sum()),
                "mean_reward": float(self.rewards[m].mean()),
                "mean_expected_reward": float(self.expected[m].mean()),
                "mean_regret": float(regret[m].mean()),
                "optimal_rate": float((regret[m] <= 1e-9).mean()),
            }
        counts = Counter(self.channels.tolist())
        return {
            "steps": n,
            "mean_reward": float(self.rewards.mean()) if n else 0.0,
            "mean_expected_reward": float(self.expected.mean()) if n else 0.0,
            "total_reward": float(self.rewards.sum()),
            "regret": float(regret.sum()),
            "mean_regret": float(regret.mean()) if n else 0.0,
            "final_mean_regret": float(regret[tail].mean()) if n else 0.0,
            "optimal_rate": float((regret <= 1e-9).mean()) if n else 0.0,
            "seconds": self.seconds,
            "steps_per_second": n / self.seconds if self.seconds > 0 else None,
            "channel_mix": {ch: c / n for ch, c in sorted(counts.items())},
            "by_decision_point": by_dp,
            "params": self.params,
        }


def default_params(kind: str, catalog: Catalog, seed: int) -> dict[str, Any]:
    """Hyperparameters the simulator gives a kind: ``rules`` gets the catalog's journeys."""
    params: dict[str, Any] = {"seed": seed}
    if kind == "rules":
        params["priorities"] = catalog.journey_priorities()
    return params


def build_policy(kind: str, catalog: Catalog, seed: int, **overrides: Any) -> BasePolicy:
    return make_policy(kind, **{**default_params(kind, catalog, seed), **overrides})


def _index_of(actions: Sequence[Action], action_id: str) -> int:
    for i, a in enumerate(actions):
        if a.id == action_id:
            return i
    raise InvalidSimulationConfig(f"policy chose {action_id!r}, which is not eligible")


@dataclass
class _Trace:
    """What a run records per step, as lists (arrays at the end: cheaper than item
    assignment); ``contexts``, ``actions``, ``indices`` and ``truths`` only when the run
    keeps its batch."""

    decision_points: list[str] = field(default_factory=list)
    action_ids: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    expected: list[float] = field(default_factory=list)
    optimal: list[float] = field(default_factory=list)
    contexts: list[Context] = field(default_factory=list)
    actions: list[Sequence[Action]] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    truths: list[np.ndarray] = field(default_factory=list)

    def run_log(self, policy: BasePolicy, seconds: float, keep_batch: bool) -> RunLog:
        """The run's :class:`RunLog` (with its logged batch and truths when kept)."""
        p = np.array(self.probabilities, dtype=float)
        r = np.array(self.rewards, dtype=float)
        batch = None
        if keep_batch:
            batch = LoggedBatch(
                self.contexts, self.actions, np.array(self.indices), p.copy(), r.copy()
            )
        return RunLog(
            policy=policy.kind,
            decision_points=np.array(self.decision_points),
            action_ids=np.array(self.action_ids),
            channels=np.array(self.channels),
            probabilities=p,
            rewards=r,
            expected=np.array(self.expected, dtype=float),
            optimal=np.array(self.optimal, dtype=float),
            seconds=seconds,
            batch=batch,
            truths=self.truths if keep_batch else None,
            params={k: v for k, v in policy.params.items() if k != "priorities"},
        )


def run_policy(
    policy: BasePolicy,
    env: Environment,
    steps: int,
    seed: int = 0,
    learn_every: int = 32,
    learn: bool = True,
    keep_batch: bool = False,
    progress: Callable[[int], None] | None = None,
) -> RunLog:
    """Run ``policy`` for ``steps`` decisions in ``env`` reset with ``seed``.

    The decision seed of step ``t`` is derived from the event id ``sim-<seed>-<t>``,
    so a run is reproducible end to end. With ``learn``, ``policy.learn`` gets a
    :class:`LoggedBatch` every ``learn_every`` steps (and the remainder at the end).
    With ``keep_batch`` the whole run's logged feedback and the per-round truths
    are returned for off-policy evaluation.
    """
    if steps < 1 or learn_every < 1:
        raise InvalidSimulationConfig("steps and learn_every must be >= 1")
    obs = env.reset(seed=seed)
    trace = _Trace()
    dps, ids, chans = trace.decision_points, trace.action_ids, trace.channels
    probs, rewards = trace.probabilities, trace.rewards
    expected, optimal = trace.expected, trace.optimal
    all_ctx, all_act, all_idx, truths = trace.contexts, trace.actions, trace.indices, trace.truths
    pending = _PendingFeedback()
    start = time.perf_counter()
    prefix = f"sim-{seed}-"
    for t in range(steps):
        event_id = prefix + str(t)
        context = obs.context
        decision = decide_among(
            policy, context, obs.eligible, obs.excluded, seed_from_event_id(event_id), event_id
        )
        result = env.step(decision)
        action = result.action
        reward = result.reward
        dps.append(context.decision_point)
        ids.append(action.id)
        chans.append(action.channel)
        probs.append(decision.probability)
        rewards.append(reward)
        expected.append(float(result.expected_rewards[result.chosen]))
        optimal.append(result.optimal_value)
        idx = _index_of(obs.eligible, action.id)
        if keep_batch:
            all_ctx.append(context)
            all_act.append(obs.eligible)
            all_idx.append(idx)
            truths.append(result.expected_rewards[obs.eligible_index])
        if learn:
            pending.add(context, obs.eligible, idx, decision.probability, reward)
            if len(pending.contexts) >= learn_every or t == steps - 1:
                pending.learn(policy)
        if progress is not None:
            progress(1)
        obs = result.next_observation
    return trace.run_log(policy, time.perf_counter() - start, keep_batch)


class _PendingFeedback:
    """The feedback a run has not learnt from yet: a :class:`LoggedBatch` in lists."""

    __slots__ = ("actions", "contexts", "indices", "probabilities", "rewards")

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.contexts: list[Context] = []
        self.actions: list[Sequence[Action]] = []
        self.indices: list[int] = []
        self.probabilities: list[float] = []
        self.rewards: list[float] = []

    def add(
        self, context: Context, actions: Sequence[Action], index: int, p: float, r: float
    ) -> None:
        self.contexts.append(context)
        self.actions.append(actions)
        self.indices.append(index)
        self.probabilities.append(p)
        self.rewards.append(r)

    def learn(self, policy: BasePolicy) -> None:
        """``policy.learn`` on what is pending, then start again empty."""
        policy.learn(
            LoggedBatch(
                self.contexts,
                self.actions,
                np.array(self.indices),
                np.array(self.probabilities),
                np.array(self.rewards),
            )
        )
        self._reset()


def progress_bar(total: int, desc: str, enabled: bool | None = None) -> Any:
    """A tqdm bar on a terminal (stderr is a TTY), else a no-op with the same interface."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, unit="step", leave=False)


def compare(
    kinds: Sequence[str],
    env: Environment,
    steps: int,
    seed: int = 0,
    learn_every: int = 32,
    show_progress: bool | None = None,
    policy_params: dict[str, dict[str, Any]] | None = None,
) -> dict[str, tuple[RunLog, BasePolicy]]:
    """Run each policy kind on the same world (same episode seed); kind → (log, trained policy)."""
    out: dict[str, tuple[RunLog, BasePolicy]] = {}
    for kind in kinds:
        policy = build_policy(kind, env.catalog, seed, **(policy_params or {}).get(kind, {}))
        with progress_bar(steps, kind, show_progress) as bar:
            log = run_policy(policy, env, steps, seed, learn_every, progress=bar.update)
        out[kind] = (log, policy)
    return out
