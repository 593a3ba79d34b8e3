"""Drive a live Maestro's ``agent_routing`` decision point with the routing simulator:
each case goes to ``POST /decide`` with the roster as actions (load and capacity as they
are now, *without* ``continuity`` — the service computes it from ``last_agent_id`` in the
context), the chosen agent takes the case in the simulator, and the interaction's reward
(:class:`policies.routing.RoutingReward`) goes to ``POST /reward``. The simulator still
knows every agent's true expected reward, so the live router's regret is exact.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from client import MaestroClient
from policies.routing import CONTINUITY
from policies.types import Decision
from simulator.errors import TargetError
from simulator.http_client import post_reward
from simulator.routing import DECISION_POINT, RoutingEnvironment
from simulator.run import RunLog


def run_routing_target(
    client: MaestroClient,
    env: RoutingEnvironment,
    steps: int,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> RunLog:
    """Route ``steps`` simulated cases through the Maestro behind ``client``.

    The service must see the simulator's customers (their tier and churn risk drive the
    retention rule): load :func:`simulator.routing.customer_rows` into its feature store.
    An answer naming an agent the simulator's rules exclude raises :class:`TargetError`.
    """
    obs = env.reset(seed=seed)
    ids: list[str] = []
    probs, rewards = np.empty(steps), np.empty(steps)
    expected, optimal = np.empty(steps), np.empty(steps)
    policy, degraded, versions = "", 0, set()
    start = time.perf_counter()
    for t in range(steps):
        actions: list[dict[str, Any]] = [
            {"id": a.id, "channel": a.channel,
             "features": {k: v for k, v in a.features.items() if k != CONTINUITY}}
            for a in obs.candidates
        ]
        answer = client.decide(obs.customer_id, DECISION_POINT, dict(obs.context.request),
                               actions)
        chosen = next((a for a in obs.eligible if a.id == answer.action_id), None)
        if chosen is None:
            raise TargetError(f"/decide routed case {t} to {answer.action_id!r}, which the "
                              "simulator's rules exclude")
        result = env.step(Decision(answer.event_id, chosen, answer.probability, ()))
        post_reward(client, answer.event_id, result.reward)
        policy = answer.policy or policy
        versions.add(answer.policy_version)
        degraded += answer.degraded
        ids.append(chosen.id)
        probs[t], rewards[t] = answer.probability, result.reward
        expected[t] = result.expected_rewards[result.chosen]
        optimal[t] = result.optimal_value
        if progress is not None:
            progress(1)
        obs = result.next_observation
    return RunLog(
        policy=policy or "target", decision_points=np.array([DECISION_POINT] * steps),
        action_ids=np.array(ids), channels=np.array(["agent"] * steps), probabilities=probs,
        rewards=rewards, expected=expected, optimal=optimal,
        seconds=time.perf_counter() - start,
        params={"target": client.base_url, "degraded": degraded,
                "policy_versions": sorted(versions)},
    )
