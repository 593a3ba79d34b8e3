"""Conformance checks every policy must pass, in the spirit of Gymnasium's ``check_env``.

``check_policy(policy)`` raises :class:`PolicyConformanceError` naming the first broken
promise: the pmf covers exactly the given actions and sums to 1, the drawn action's
probability is the one in the pmf, the same seed gives the same draw, and the
save/load round trip gives identical probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from policies.base import BasePolicy
from policies.errors import PolicyConformanceError
from policies.registry import load_policy
from policies.types import Action, Context, LoggedBatch

PMF_TOLERANCE = 1e-9


def _sample_inputs(rng: np.random.Generator, n: int) -> list[tuple[Context, list[Action]]]:
    channels = ["email", "push", "sms", "in_app", "whatsapp", "call_center"]
    out = []
    for i in range(n):
        k = int(rng.integers(1, 8))
        actions = [
            Action(
                f"a{j}",
                channels[j % len(channels)],
                {"offer": f"o{j % 3}", "category": "marketing"},
            )
            for j in rng.permutation(10)[:k]
        ]
        context = Context(
            f"c-{i}",
            {
                "segment": str(rng.choice(["a", "b"])),
                "ltv": float(rng.gamma(2, 50)),
                "consent_email": True,
            },
            {"page": "checkout"},
        )
        out.append((context, actions))
    return out


def check_pmf(pmf: np.ndarray, actions: Sequence[Action]) -> None:
    if pmf.shape != (len(actions),):
        raise PolicyConformanceError(f"pmf shape {pmf.shape} != ({len(actions)},)")
    if not np.all(np.isfinite(pmf)) or np.any(pmf < 0):
        raise PolicyConformanceError(f"pmf has negative or non-finite entries: {pmf}")
    if abs(math.fsum(pmf) - 1.0) > PMF_TOLERANCE:
        raise PolicyConformanceError(f"pmf sums to {math.fsum(pmf)!r}, not 1")


def check_policy(policy: BasePolicy, n_contexts: int = 50, seed: int = 0) -> None:
    """Run every conformance check on ``policy`` (it is trained a little on the way)."""
    rng = np.random.default_rng(seed)
    inputs = _sample_inputs(rng, n_contexts)
    for i, (context, actions) in enumerate(inputs):
        pmf = policy.pmf(context, actions)
        check_pmf(pmf, actions)
        decision = policy.decide(context, actions, seed=i, event_id=f"e{i}")
        if decision.action not in actions:
            raise PolicyConformanceError("decided action is not among the given actions")
        index = actions.index(decision.action)
        if abs(decision.probability - pmf[index]) > PMF_TOLERANCE:
            raise PolicyConformanceError("decision.probability differs from the pmf")
        if decision.probability <= 0:
            raise PolicyConformanceError("drew an action with zero probability")
        if {r.action_id for r in decision.ranking} != {a.id for a in actions}:
            raise PolicyConformanceError("ranking does not cover exactly the eligible actions")
        if abs(math.fsum(r.probability for r in decision.ranking) - 1.0) > PMF_TOLERANCE:
            raise PolicyConformanceError("ranking probabilities do not sum to 1")
        again = policy.decide(context, actions, seed=i, event_id=f"e{i}")
        if again.action != decision.action or again.probability != decision.probability:
            raise PolicyConformanceError("same seed gave a different draw")
    # learn a little, then round-trip through bytes
    contexts = [c for c, _ in inputs]
    acts = [a for _, a in inputs]
    chosen = np.array([int(rng.integers(len(a))) for a in acts])
    probs = np.array([1.0 / len(a) for a in acts])
    rewards = rng.random(len(inputs))
    policy.learn(LoggedBatch(contexts, acts, chosen, probs, rewards))
    clone = load_policy(policy.save())
    if type(clone) is not type(policy):
        raise PolicyConformanceError("load(save()) changed the policy's type")
    for context, actions in inputs:
        if not np.allclose(clone.pmf(context, actions), policy.pmf(context, actions), atol=1e-12):
            raise PolicyConformanceError("save/load round trip changed the probabilities")
