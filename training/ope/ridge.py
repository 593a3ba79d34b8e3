"""A simple ridge reward model for the direct-method and doubly-robust estimators."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from policies.featurize import DenseFeaturizer
from policies.types import Action, Context, LoggedBatch
from training.errors import EstimatorInputError


class RidgeRewardModel:
    """A simple reward model for DM and DR: one ridge regression per action id.

    Regresses the observed reward of the logged action on the hashed customer and
    context features (:class:`policies.featurize.DenseFeaturizer`, ``shared_dim`` wide
    plus a bias); an action id never logged is predicted by the mean logged reward.
    Calling the model gives ``q̂(x, a)`` for every action, shape ``(n_actions,)``.

    Parameters
    ----------
    ridge: float, default 1.0
        The L2 penalty ``λ`` of each regression, ``> 0``.
    shared_dim: int, default 64
        Width of the hashed customer and context features.

    References:
        Hoerl & Kennard, *Ridge Regression: Biased Estimation for Nonorthogonal Problems*,
        Technometrics 12 (1970).
    """

    def __init__(self, ridge: float = 1.0, shared_dim: int = 64) -> None:
        if ridge <= 0:
            raise EstimatorInputError("ridge must be > 0", field="ridge")
        self.ridge = ridge
        self._feat = DenseFeaturizer(shared_dim, 4)
        self._theta: dict[str, np.ndarray] = {}
        self._mean = 0.0

    def _x(self, context: Context) -> np.ndarray:
        return np.append(self._feat.shared(context).astype(np.float64), 1.0)

    def fit(self, batch: LoggedBatch) -> RidgeRewardModel:
        """Fit ``θ_a = (XᵀX + λI)⁻¹ Xᵀy`` per logged action id on ``batch`` (n_rounds rows)."""
        rows: dict[str, list[tuple[np.ndarray, float]]] = {}
        for ctx, acts, idx, r in zip(
            batch.contexts, batch.actions, batch.chosen, batch.rewards, strict=True
        ):
            rows.setdefault(acts[int(idx)].id, []).append((self._x(ctx), float(r)))
        self._mean = float(np.mean(batch.rewards)) if len(batch) else 0.0
        for action_id, data in rows.items():
            x = np.stack([d[0] for d in data])
            y = np.array([d[1] for d in data])
            a = x.T @ x + self.ridge * np.eye(x.shape[1])
            self._theta[action_id] = np.linalg.solve(a, x.T @ y)
        return self

    def __call__(self, context: Context, actions: Sequence[Action]) -> np.ndarray:
        """``q̂(x, a)`` of each of ``actions``, shape (n_actions,)."""
        x = self._x(context)
        return np.array(
            [float(self._theta[a.id] @ x) if a.id in self._theta else self._mean for a in actions]
        )
