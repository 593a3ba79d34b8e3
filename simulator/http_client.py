"""The runner that drives a live Maestro with simulated customers.

With ``--target URL`` the simulator is the journey engine: for each simulated visit it
posts what the customer did (``/events``), asks ``/decide`` at the visit's decision
point with the request context, plays the returned action in the environment, posts
the customer's reactions and the realised reward (``/reward``). The environment
still knows the true expected reward of every action, so the live service's regret
is exact. It talks to the service through the one Python client, :mod:`client`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import numpy as np

from client import Conflict, MaestroClient
from policies.types import Action, Decision
from simulator.environment import Environment, Observation
from simulator.errors import TargetError
from simulator.run import RunLog


def post_reward(client: MaestroClient, event_id: str, reward: float) -> None:
    """Post a reward; a late one (``409``: the window closed) is not an error here."""
    with contextlib.suppress(Conflict):
        client.reward(event_id, reward)


def _action(obs: Observation, action_id: str | None) -> Action | None:
    if action_id is None:
        return None
    for a in obs.candidates:
        if a.id == action_id:
            return a
    raise TargetError(f"/decide chose {action_id!r}, not in the catalog of {obs.decision_point!r}")


def run_target(
    client: MaestroClient,
    env: Environment,
    steps: int,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> RunLog:
    """Drive the Maestro behind ``client`` for ``steps`` simulated visits; the log's
    ``policy`` is the policy the service reported last.

    The service evaluates its rules (quiet hours) at wall-clock time and on its own copy
    of the features, so it may choose an action the simulator's rules exclude; such
    steps are counted in ``params["ineligible_in_simulator"]`` and their regret, still
    measured against the best action eligible in the simulator, can be negative.
    """
    obs = env.reset(seed=seed)
    dps: list[str] = []
    ids: list[str] = []
    chans: list[str] = []
    probs, rewards = np.empty(steps), np.empty(steps)
    expected, optimal = np.empty(steps), np.empty(steps)
    policy, degraded, mismatched, versions = "", 0, 0, set()
    start = time.perf_counter()
    for t in range(steps):
        for ev in obs.events:
            client.event(ev.customer_id, ev.type, dict(ev.properties))
        answer = client.decide(obs.customer_id, obs.decision_point, dict(obs.context.request))
        action = _action(obs, answer.action_id)
        decision = Decision(event_id=answer.event_id, action=action,
                            probability=answer.probability, ranking=(), policy=answer.policy,
                            policy_version=answer.policy_version)
        result = env.step(decision)
        for ev in result.events:
            client.event(ev.customer_id, ev.type, dict(ev.properties))
        post_reward(client, answer.event_id, result.reward)
        policy = answer.policy or policy
        versions.add(answer.policy_version)
        degraded += answer.degraded
        # the service applies its rules at wall-clock time, the simulator at simulated
        # time: a choice the simulator's rules exclude is counted (its regret may be < 0)
        mismatched += action is not None and action not in obs.eligible
        dps.append(obs.decision_point)
        ids.append(result.action.id)
        chans.append(result.action.channel)
        probs[t], rewards[t] = answer.probability, result.reward
        expected[t] = result.expected_rewards[result.chosen]
        optimal[t] = result.optimal_value
        if progress is not None:
            progress(1)
        obs = result.next_observation
    return RunLog(
        policy=policy or "target", decision_points=np.array(dps), action_ids=np.array(ids),
        channels=np.array(chans), probabilities=probs, rewards=rewards, expected=expected,
        optimal=optimal, seconds=time.perf_counter() - start,
        params={"target": client.base_url, "degraded": degraded,
                "policy_versions": sorted(versions), "ineligible_in_simulator": mismatched,
                "overload_retries": client.refused},
    )
