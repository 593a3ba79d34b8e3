"""A torch contextual bandit: a bootstrapped MLP ensemble with Thompson-style draws.

Each of ``n_heads`` heads regresses reward on the hashed joint (customer, context,
action) features, trained on its own bootstrap resample (Poisson(1) weights), the
approximate posterior of Osband, Blundell, Pritzel & Van Roy, *Deep Exploration via
Bootstrapped DQN* (NeurIPS 2016), compared for bandits by Riquelme, Tucker & Snoek,
*Deep Bayesian Bandits Showdown* (ICLR 2018).

Thompson sampling over the ensemble picks a head uniformly at random and plays its
arg-max. The probability of each action under that procedure is known exactly —
the share of heads whose arg-max it is — so :meth:`raw_pmf` returns it and the draw
from that pmf is an exact, honest propensity.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from policies.base import BasePolicy
from policies.errors import InvalidParameterError
from policies.featurize import DenseFeaturizer
from policies.types import Action, Context, LoggedBatch


@dataclass
class NeuralPolicy(BasePolicy):
    """Bootstrapped MLP ensemble on CPU (see module docstring).

    Parameters
    ----------
    n_heads: int, default 8
        Ensemble size (heads of one shared two-layer MLP), ``>= 1``.
    hidden: int, default 64
        Width of both hidden layers, ``>= 1``.
    learning_rate: float, default 0.01
        Adam's step size, in ``(0, 10)``.
    batch_size: int, default 64
        Rows per gradient step, ``1 <= batch_size <= replay_size``.
    replay_size: int, default 20_000
        Rows kept in the ring-buffer replay memory.
    updates_per_row: float, default 0.5
        Gradient steps per learned row (fractions carry over between batches).
    exploration_floor: float, default 0.05
        Probability mass spread over every eligible action.
    shared_dim, action_dim: int, default 64 and 16
        Hashed widths of the customer/context and the action features.
    seed: int, default 0
        Seeds the network's initialisation, the bootstrap weights and the replay draws.

    References:
        Osband, Blundell, Pritzel & Van Roy, *Deep Exploration via Bootstrapped DQN*,
        NeurIPS 2016; Riquelme, Tucker & Snoek, *Deep Bayesian Bandits Showdown*, ICLR 2018.
    """

    n_heads: int = 8
    hidden: int = 64
    learning_rate: float = 0.01
    batch_size: int = 64
    replay_size: int = 20_000
    updates_per_row: float = 0.5
    exploration_floor: float = 0.05
    shared_dim: int = 64
    action_dim: int = 16

    kind: ClassVar[str] = "neural"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_heads < 1:
            raise InvalidParameterError("n_heads must be >= 1")
        if self.hidden < 1:
            raise InvalidParameterError("hidden must be >= 1")
        if not 0 < self.learning_rate < 10:
            raise InvalidParameterError("learning_rate must lie in (0, 10)")
        if self.batch_size < 1 or self.replay_size < self.batch_size:
            raise InvalidParameterError("need 1 <= batch_size <= replay_size")
        import torch  # heavy import kept out of module import

        self._torch = torch
        torch.set_num_threads(1)  # tiny networks: threads only add latency
        self._feat = DenseFeaturizer(self.shared_dim, self.action_dim)
        self._gen = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        d = self._feat.joint_dim
        self._net = torch.nn.Sequential(
            torch.nn.Linear(d, self.hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(self.hidden, self.hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(self.hidden, self.n_heads),
        )
        self._opt = torch.optim.Adam(self._net.parameters(), lr=self.learning_rate)
        self._x = np.zeros((self.replay_size, d), dtype=np.float32)
        self._r = np.zeros(self.replay_size, dtype=np.float32)
        self._w = np.zeros((self.replay_size, self.n_heads), dtype=np.float32)
        self._rows = 0  # rows ever added; ring buffer position is rows % replay_size
        self._rng = np.random.default_rng(self.seed)

    def head_scores(self, context: Context, actions: Sequence[Action]) -> np.ndarray:
        """Predicted reward per action and head.

        Parameters
        ----------
        context: Context
            The customer's features and the decision's context values.
        actions: sequence of Action, length n_actions
            The eligible candidates (at least one).

        Returns
        -------
        ndarray, shape (n_actions, n_heads)
        """
        x = self._torch.from_numpy(self._feat.joint(context, actions))
        with self._torch.inference_mode():
            return self._net(x).numpy()

    def raw_pmf(self, context: Context, actions: Sequence[Action]) -> np.ndarray:
        """Thompson sampling's exact pmf: each action's share of the heads' arg-max votes.

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
        scores = self.head_scores(context, actions)  # (n_actions, n_heads)
        best = scores.max(axis=0, keepdims=True)
        winners = scores >= best - 1e-9  # ties split a head's vote
        votes = winners / winners.sum(axis=0, keepdims=True)
        return votes.sum(axis=1) / self.n_heads

    def learn(self, batch: LoggedBatch) -> None:
        """Add each round to the replay memory with Poisson(1) weights per head, then take
        ``updates_per_row`` weighted squared-error steps per added row.

        Parameters
        ----------
        batch: LoggedBatch, n_rounds rows
            Contexts, candidates, chosen index and reward of each round.
        """
        n = len(batch)
        if n == 0:
            return
        for context, actions, idx, reward in zip(
            batch.contexts, batch.actions, batch.chosen, batch.rewards, strict=True
        ):
            pos = self._rows % self.replay_size
            self._x[pos] = self._feat.joint(context, [actions[int(idx)]])[0]
            self._r[pos] = float(reward)
            self._w[pos] = self._rng.poisson(1.0, self.n_heads)
            self._rows += 1
        self._pending = getattr(self, "_pending", 0.0) + n * self.updates_per_row
        torch = self._torch
        filled = min(self._rows, self.replay_size)
        while self._pending >= 1.0:
            self._pending -= 1.0
            rows = self._rng.integers(0, filled, size=min(self.batch_size, filled))
            x = torch.from_numpy(self._x[rows])
            r = torch.from_numpy(self._r[rows]).unsqueeze(1)
            w = torch.from_numpy(self._w[rows])
            pred = self._net(x)
            loss = (w * (pred - r) ** 2).sum() / max(float(w.sum()), 1.0)
            self._opt.zero_grad(set_to_none=True)
            loss.backward()
            self._opt.step()

    def _state(self) -> bytes:
        buf = io.BytesIO()
        self._torch.save(self._net.state_dict(), buf)
        return buf.getvalue()

    def _restore(self, payload: bytes) -> None:
        if payload:
            state = self._torch.load(io.BytesIO(payload), weights_only=True)
            self._net.load_state_dict(state)
