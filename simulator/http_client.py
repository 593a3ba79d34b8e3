"""A small client of Maestro's HTTP API (``/events``, ``/decide``, ``/reward``), per the
contract, and the runner that drives a live Maestro with simulated customers.

With ``--target URL`` the simulator is the journey engine: for each simulated visit it
posts what the customer did (``/events``), asks ``/decide`` at the visit's decision
point with the request context, plays the returned action in the environment, posts
the customer's reactions and the realised reward (``/reward``). The environment
still knows the true expected reward of every action, so the live service's regret
is exact. ``Authorization: Bearer <key>`` is sent when an API key is given.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from policies.types import Action, Decision
from simulator.environment import Environment, Observation, SimEvent
from simulator.errors import TargetError
from simulator.run import RunLog


@dataclass(frozen=True)
class DecideAnswer:
    """The parts of a ``/decide`` answer the simulator uses."""

    event_id: str
    action_id: str | None
    probability: float
    policy: str
    policy_version: str
    degraded: bool


class MaestroClient:
    """``httpx`` client of one running Maestro (keep-alive, one connection pool)."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout,
                                  transport=transport)
        self.refused = 0  # 503 answers retried

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> MaestroClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    #: a ``503`` (overload: the request was refused before any work) is retried after its
    #: ``Retry-After`` (capped at :attr:`max_retry_wait` s), at most this many times
    overload_retries = 8
    max_retry_wait = 1.0

    def _post(self, path: str, body: dict[str, Any], ok: tuple[int, ...]) -> httpx.Response:
        for attempt in range(self.overload_retries + 1):
            try:
                resp = self._http.post(path, json=body)
            except httpx.HTTPError as exc:
                raise TargetError(f"{self.base_url}{path}: {exc}") from exc
            if resp.status_code != 503 or attempt == self.overload_retries:
                break
            self.refused += 1
            try:
                wait = float(resp.headers.get("retry-after", "1"))
            except ValueError:
                wait = 1.0
            time.sleep(min(max(wait, 0.0), self.max_retry_wait))
        if resp.status_code == 401:
            raise TargetError(f"{self.base_url}{path}: 401 unauthorized (set MAESTRO_API_KEY)")
        if resp.status_code not in ok:
            raise TargetError(f"{self.base_url}{path}: HTTP {resp.status_code}: {resp.text[:300]}")
        return resp

    def healthy(self) -> bool:
        try:
            return self._http.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    def event(self, event: SimEvent) -> None:
        body = {"customer_id": event.customer_id, "type": event.type,
                "properties": dict(event.properties)}
        self._post("/events", body, (202, 200))

    def decide(self, customer_id: str, decision_point: str, context: dict[str, Any],
               actions: list[dict[str, Any]] | None = None) -> DecideAnswer:
        """``actions`` (optional): the candidates to send, e.g. the agents available now."""
        body: dict[str, Any] = {"customer_id": customer_id, "decision_point": decision_point,
                                "context": context}
        if actions is not None:
            body["actions"] = actions
        data = self._post("/decide", body, (200,)).json()
        try:
            return DecideAnswer(str(data["event_id"]), data.get("action_id"),
                                float(data["probability"]), str(data.get("policy", "")),
                                str(data.get("policy_version", "")), bool(data.get("degraded")))
        except (KeyError, TypeError, ValueError) as exc:
            raise TargetError(f"/decide: malformed answer {data!r}") from exc

    def reward(self, event_id: str, reward: float) -> bool:
        """Post a reward; ``True`` when accepted (a duplicate or late one is not an error)."""
        resp = self._post("/reward", {"event_id": event_id, "reward": float(reward)},
                          (200, 409))
        return resp.status_code == 200


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
            client.event(ev)
        answer = client.decide(obs.customer_id, obs.decision_point, dict(obs.context.request))
        action = _action(obs, answer.action_id)
        decision = Decision(event_id=answer.event_id, action=action,
                            probability=answer.probability, ranking=(), policy=answer.policy,
                            policy_version=answer.policy_version)
        result = env.step(decision)
        for ev in result.events:
            client.event(ev)
        client.reward(answer.event_id, result.reward)
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
