"""Synthetic bandit problems shared by the tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from policies.types import Action, Context


@dataclass(frozen=True)
class ContextualProblem:
    """A Bernoulli contextual bandit whose best action depends on the customer's segment.

    ``table[s, a]`` is the expected reward of action ``a`` for segment ``s``.
    """

    actions: tuple[Action, ...]
    segments: tuple[str, ...]
    table: np.ndarray

    def context(self, rng: np.random.Generator) -> tuple[Context, int]:
        s = int(rng.integers(len(self.segments)))
        customer = {
            "segment": self.segments[s],
            "tenure_days": int(rng.integers(0, 1000)),
            "churn_risk": float(rng.random()),
        }
        return Context("c-1", customer, {"device": str(rng.choice(["mobile", "desktop"]))}), s

    def optimal_value(self) -> float:
        return float(self.table.max(axis=1).mean())

    def uniform_value(self) -> float:
        return float(self.table.mean())


def segment_problem() -> ContextualProblem:
    actions = (
        Action("email_discount", "email", {"offer": "discount", "category": "marketing"}),
        Action("push_reminder", "push", {"offer": "reminder", "category": "marketing"}),
        Action("sms_discount", "sms", {"offer": "discount", "category": "marketing"}),
        Action("in_app_banner", "in_app", {"offer": "content", "category": "marketing"}),
        Action("no_contact", "none", {"category": "none"}),
    )
    table = np.array(
        [
            [0.80, 0.20, 0.10, 0.25, 0.15],
            [0.15, 0.80, 0.20, 0.10, 0.15],
            [0.10, 0.20, 0.80, 0.25, 0.15],
            [0.20, 0.15, 0.10, 0.10, 0.80],
        ]
    )
    return ContextualProblem(actions, ("bargain", "mobile_first", "texter", "fatigued"), table)
