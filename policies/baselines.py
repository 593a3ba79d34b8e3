"""Baseline policies: uniform random, today's static journeys, and LinUCB."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from policies.base import BasePolicy, greedy_pmf
from policies.errors import InvalidParameterError
from policies.featurize import DenseFeaturizer
from policies.types import NO_CONTACT_ID, Action, Context, LoggedBatch


@dataclass
class UniformPolicy(BasePolicy):
    """Uniform random over the eligible actions: the logging policy with the best-behaved
    propensities, and the floor every learned policy must beat.

    Parameters
    ----------
    seed: int, default 0
        Seed of the policy (the draw itself is seeded by the event id).

    References:
        Li, Chu, Langford & Wang, *Unbiased Offline Evaluation of Contextual-bandit-based News
        Article Recommendation Algorithms*, WSDM 2011 (uniform logging for replay evaluation).
    """

    kind: ClassVar[str] = "uniform"
    context_free: ClassVar[bool] = True

    def raw_pmf(self, context: Context, actions: Sequence[Action]) -> list[float]:
        """``1 / n_actions`` for every candidate.

        Parameters
        ----------
        context: Context
            The customer's features and the decision's context values.
        actions: sequence of Action, length n_actions
            The eligible candidates (at least one).

        Returns
        -------
        list of float, length n_actions
        """
        n = len(actions)
        return [1.0 / n] * n


@dataclass
class RulesPolicy(BasePolicy):
    """Today's static journey logic: the first eligible action in a fixed priority order.

    ``priorities`` maps a decision point to action ids, best first; actions not listed
    rank after the listed ones, ordered by their ``priority`` feature (higher first),
    then catalog order. A small exploration floor makes its logs usable for off-policy
    evaluation.

    Parameters
    ----------
    exploration_floor: float, default 0.05
        Probability mass spread over every eligible action (ε of ε-greedy).
    priorities: dict of str to list of str
        Per decision point, action ids best first (``Catalog.journey_priorities``).
    seed: int, default 0
        Seed of the policy.

    References:
        Sutton & Barto, *Reinforcement Learning: An Introduction*, 2nd ed., MIT Press 2018,
        §2.2 (ε-greedy action selection, the floor over a fixed greedy choice).
    """

    exploration_floor: float = 0.05
    priorities: dict[str, list[str]] = field(default_factory=dict)

    kind: ClassVar[str] = "rules"
    context_free: ClassVar[bool] = True

    def raw_pmf(self, context: Context, actions: Sequence[Action]) -> list[float]:
        """All mass on the best-ranked candidate (before the exploration floor).

        Parameters
        ----------
        context: Context
            The customer's features and the decision's context values.
        actions: sequence of Action, length n_actions
            The eligible candidates (at least one).

        Returns
        -------
        list of float, length n_actions
        """
        order = self.priorities.get(context.decision_point, [])
        rank = {action_id: i for i, action_id in enumerate(order)}
        big = len(order) + 1

        def key(i: int) -> tuple[float, float, int]:
            a = actions[i]
            prio = a.features.get("priority")
            p = (
                float(prio)
                if isinstance(prio, (int, float)) and not isinstance(prio, bool)
                else 0.0
            )
            no_contact_last = 1.0 if a.id == NO_CONTACT_ID and a.id not in rank else 0.0
            return (rank.get(a.id, big) + no_contact_last, -p, i)

        best = min(range(len(actions)), key=key)
        pmf = [0.0] * len(actions)
        pmf[best] = 1.0
        return pmf


@dataclass
class LinUCBPolicy(BasePolicy):
    """Disjoint LinUCB: an upper confidence bound over one ridge regression per action.

    One ridge regression per action id on the hashed joint features
    ``x`` (shape ``(shared_dim + action_dim + 1,)``); the action with the largest
    upper confidence bound ``θ_aᵀx + α·sqrt(xᵀA_a⁻¹x)`` is chosen (ties split), mixed
    with the exploration floor so every eligible action keeps a known probability.
    ``A_a⁻¹`` is kept directly with Sherman–Morrison updates.

    Parameters
    ----------
    alpha: float, default 0.5
        Width ``α`` of the confidence bound, ``>= 0`` (0: greedy ridge regression).
    ridge: float, default 1.0
        L2 penalty: each ``A_a`` starts as ``ridge · I``, ``> 0``.
    exploration_floor: float, default 0.05
        Probability mass spread over every eligible action.
    shared_dim, action_dim: int, default 64 and 16
        Hashed widths of the customer/context and the action features.
    seed: int, default 0
        Seed of the policy.

    References:
        Li, Chu, Langford & Schapire, *A Contextual-Bandit Approach to Personalized News
        Article Recommendation*, WWW 2010 (Algorithm 1, disjoint LinUCB).
    """

    alpha: float = 0.5
    ridge: float = 1.0
    exploration_floor: float = 0.05
    shared_dim: int = 64
    action_dim: int = 16

    kind: ClassVar[str] = "linucb"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.alpha < 0:
            raise InvalidParameterError("alpha must be >= 0")
        if self.ridge <= 0:
            raise InvalidParameterError("ridge must be > 0")
        self._feat = DenseFeaturizer(self.shared_dim, self.action_dim)
        self._d = self._feat.joint_dim
        self._a_inv: dict[str, np.ndarray] = {}
        self._b: dict[str, np.ndarray] = {}

    def _model(self, action_id: str) -> tuple[np.ndarray, np.ndarray]:
        a_inv = self._a_inv.get(action_id)
        if a_inv is None:
            a_inv = np.eye(self._d) / self.ridge
            self._a_inv[action_id] = a_inv
            self._b[action_id] = np.zeros(self._d)
        return a_inv, self._b[action_id]

    def scores(self, context: Context, actions: Sequence[Action]) -> np.ndarray:
        """Upper confidence bound per action.

        Parameters
        ----------
        context: Context
            The customer's features and the decision's context values.
        actions: sequence of Action, length n_actions
            The eligible candidates (at least one).

        Returns
        -------
        ndarray, shape (n_actions,)
        """
        x = self._feat.joint(context, actions).astype(np.float64)  # (n_actions, d)
        models = [self._model(a.id) for a in actions]
        a_inv = np.stack([m[0] for m in models])  # (n_actions, d, d)
        b = np.stack([m[1] for m in models])  # (n_actions, d)
        ax = np.einsum("kij,kj->ki", a_inv, x)
        mean = np.einsum("ki,ki->k", b, ax)
        width = np.sqrt(np.maximum(np.einsum("ki,ki->k", x, ax), 0.0))
        return mean + self.alpha * width

    def raw_pmf(self, context: Context, actions: Sequence[Action]) -> np.ndarray:
        """The arg-max of :meth:`scores`, ties split evenly; shape (n_actions,)."""
        return greedy_pmf(self.scores(context, actions))

    def learn(self, batch: LoggedBatch) -> None:
        """Update the chosen action's ``A_a⁻¹`` and ``b_a`` with each logged round.

        Parameters
        ----------
        batch: LoggedBatch, n_rounds rows
            Contexts, candidates, chosen index and reward of each round; the logging
            propensities are not used (LinUCB learns on-policy from what it sees).
        """
        for context, actions, idx, reward in zip(
            batch.contexts, batch.actions, batch.chosen, batch.rewards, strict=True
        ):
            action = actions[int(idx)]
            x = self._feat.joint(context, [action])[0].astype(np.float64)
            a_inv, b = self._model(action.id)
            ax = a_inv @ x
            a_inv -= np.outer(ax, ax) / (1.0 + x @ ax)
            b += float(reward) * x

    def _state(self) -> bytes:
        buf = io.BytesIO()
        ids = sorted(self._a_inv)
        np.savez(
            buf,
            ids=np.array(ids, dtype=str),
            a_inv=np.stack([self._a_inv[i] for i in ids])
            if ids
            else np.zeros((0, self._d, self._d)),
            b=np.stack([self._b[i] for i in ids]) if ids else np.zeros((0, self._d)),
        )
        return buf.getvalue()

    def _restore(self, payload: bytes) -> None:
        if not payload:
            return
        with np.load(io.BytesIO(payload), allow_pickle=False) as data:
            for i, action_id in enumerate(data["ids"]):
                self._a_inv[str(action_id)] = data["a_inv"][i].copy()
                self._b[str(action_id)] = data["b"][i].copy()


@dataclass
class HoldoutPolicy(BasePolicy):
    """An experiment's holdout arm: ``no_contact`` with probability 1 (a deterministic
    arm), every other eligible action ranked at 0. Without ``no_contact`` among the
    actions it abstains (an empty pmf): the held-out customer gets no action at all.
    Not registered: it is an experiment's control, not a policy to train or promote."""

    version: str = "holdout"

    kind: ClassVar[str] = "holdout"

    def raw_pmf(self, context: Context, actions: Sequence[Action]) -> list[float]:
        pmf = [1.0 if a.id == NO_CONTACT_ID else 0.0 for a in actions]
        return pmf if 1.0 in pmf else []
