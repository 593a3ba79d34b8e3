"""The one featuriser: (customer features, request context, action) → model inputs.

Serving and training call the same functions, so a policy sees identical inputs
in both. Features become *tokens*, ``(name, value)`` pairs:

- numbers → ``(name, sign(x)·log1p(|x|))`` (heavy-tailed money and counts tamed);
  timestamps (names ending ``_ts``) first become ages in days at decision time;
- strings and booleans → ``(name=value, 1.0)`` (one-hot);
- a missing value (``None``) → ``(name=__missing__, 1.0)``, an explicit indicator
  rather than a silent zero.

Two views are built from the tokens: namespaced token lists for Vowpal Wabbit
(``policies.vw.policy`` renders them), and dense hashed vectors for torch and LinUCB
(signed feature hashing, Weinberger et al., *Feature Hashing for Large Scale
Multitask Learning*, ICML 2009).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from policies.types import Action, Context, FeatureValue

Token = tuple[str, float]
MISSING = "__missing__"


def numeric_value(x: float) -> float:
    """The one transform of numeric features: ``sign(x)·log1p(|x|)``.

    Parameters
    ----------
    x: float
        A raw numeric feature value (an age in days for a timestamp).
    """
    return math.copysign(math.log1p(abs(x)), x)


def token_name(name: str, value: str | bool | None) -> str:
    """The one-hot token of a categorical, boolean or missing value.

    Parameters
    ----------
    name: str
        The feature's name, with its namespace prefix.
    value: str, bool or None
        The value; ``None`` gives the explicit ``__missing__`` token.
    """
    if value is None:
        return f"{name}={MISSING}"
    if isinstance(value, bool):
        return f"{name}={'true' if value else 'false'}"
    return f"{name}={value}"


TIMESTAMP_SUFFIX = "_ts"
DAY = 86_400.0


def age_days(timestamp: float, now: float) -> float:
    """A ``*_ts`` feature (epoch seconds) as its age in days at ``now``; ``-1`` for never
    (0 or missing) or when ``now`` is unknown. Raw epochs would all look alike (≈ 1.8e9).

    Parameters
    ----------
    timestamp: float
        The feature's epoch seconds.
    now: float
        The decision's epoch seconds (``Context.timestamp``).
    """
    if timestamp <= 0.0 or now <= 0.0:
        return -1.0
    return max(0.0, (now - timestamp) / DAY)


def _tokens(
    prefix: str, features: Mapping[str, FeatureValue], out: list[Token], now: float = 0.0
) -> None:
    for name, value in features.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            x = float(value)
            if name.endswith(TIMESTAMP_SUFFIX):
                x = age_days(x, now)
            out.append((f"{prefix}{name}", numeric_value(x)))
        else:
            out.append((token_name(f"{prefix}{name}", value), 1.0))


def shared_tokens(context: Context) -> list[Token]:
    """Tokens shared by every action: customer features (``c.``), request context (``r.``).

    Parameters
    ----------
    context: Context
        The customer's features, the request context and the decision point.

    Returns
    -------
    list of (str, float), length n_customer_features + n_request_values + 1
        The last token names the decision point.
    """
    out: list[Token] = []
    _tokens("c.", context.customer, out, context.timestamp)
    _tokens("r.", context.request, out, context.timestamp)
    out.append((f"dp={context.decision_point}", 1.0))
    return out


def action_tokens(action: Action) -> list[Token]:
    """Tokens of one action: its id, its channel and its features (``a.``).

    Parameters
    ----------
    action: Action
        One candidate.

    Returns
    -------
    list of (str, float), length n_action_features + 2
    """
    out: list[Token] = [(f"id={action.id}", 1.0), (f"ch={action.channel}", 1.0)]
    _tokens("a.", action.features, out)
    return out


@dataclass
class DenseFeaturizer:
    """Signed feature hashing into fixed-width vectors.

    ``shared(context)`` has shape ``(shared_dim,)``; ``actions(actions)`` has shape
    ``(n_actions, action_dim)``; ``joint(context, actions)`` concatenates them per
    action, shape ``(n_actions, shared_dim + action_dim + 1)`` (last column a bias).
    Hash slots and action vectors are memoised (bounded), so the per-request cost is
    one pass over the customer's features.

    Parameters
    ----------
    shared_dim: int, default 64
        Width of the hashed customer and request-context vector.
    action_dim: int, default 16
        Width of the hashed action vector.

    References:
        Weinberger, Dasgupta, Langford, Smola & Attenberg, *Feature Hashing for Large Scale
        Multitask Learning*, ICML 2009 (signed hashing: the sign bit keeps inner products
        unbiased).
    """

    shared_dim: int = 64
    action_dim: int = 16
    _slots: dict[tuple[str, int], tuple[int, float]] = field(default_factory=dict, repr=False)
    _action_cache: dict[tuple[object, ...], np.ndarray] = field(default_factory=dict, repr=False)
    _shared_slots: dict[tuple[object, ...], tuple[int, float]] = field(
        default_factory=dict, repr=False
    )

    def _slot(self, token: str, dim: int) -> tuple[int, float]:
        key = (token, dim)
        hit = self._slots.get(key)
        if hit is None:
            h = zlib.crc32(token.encode())
            hit = (h % dim, 1.0 if (h >> 31) & 1 == 0 else -1.0)
            if len(self._slots) < 1_000_000:
                self._slots[key] = hit
        return hit

    def _vector(self, tokens: Sequence[Token], dim: int) -> np.ndarray:
        vec = [0.0] * dim
        slot = self._slot
        for name, value in tokens:
            i, sign = slot(name, dim)
            vec[i] += sign * value
        return np.array(vec, dtype=np.float32)

    def shared(self, context: Context) -> np.ndarray:
        """Same as hashing :func:`shared_tokens`, fused into one memoised pass.

        Parameters
        ----------
        context: Context
            The customer's features, the request context and the decision point.

        Returns
        -------
        ndarray of float32, shape (shared_dim,)
        """
        dim = self.shared_dim
        vec = [0.0] * dim
        memo = self._shared_slots
        now = context.timestamp
        for prefix, features in (("c.", context.customer), ("r.", context.request)):
            for name, value in features.items():
                if value.__class__ is float or value.__class__ is int:
                    key: tuple[object, ...] = (prefix, name)
                    hit = memo.get(key)
                    if hit is None:
                        hit = memo[key] = self._slot(f"{prefix}{name}", dim)
                    x = float(value)
                    if name.endswith(TIMESTAMP_SUFFIX):
                        x = age_days(x, now)
                    if x:
                        vec[hit[0]] += hit[1] * numeric_value(x)
                else:
                    key = (prefix, name, value, value.__class__)
                    hit = memo.get(key)
                    if hit is None:
                        hit = self._slot(token_name(f"{prefix}{name}", value), dim)  # type: ignore[arg-type]
                        if len(memo) < 1_000_000:
                            memo[key] = hit
                    vec[hit[0]] += hit[1]
        i, sign = self._slot(f"dp={context.decision_point}", dim)
        vec[i] += sign
        return np.array(vec, dtype=np.float32)

    def action(self, action: Action) -> np.ndarray:
        """The hashed :func:`action_tokens` of ``action``, shape (action_dim,), float32."""
        key = (action.id, action.channel, *action.features.items())
        vec = self._action_cache.get(key)
        if vec is None:
            vec = self._vector(action_tokens(action), self.action_dim)
            if len(self._action_cache) < 100_000:
                self._action_cache[key] = vec
        return vec

    def actions(self, actions: Sequence[Action]) -> np.ndarray:
        """One :meth:`action` row per candidate, shape (n_actions, action_dim)."""
        return np.stack([self.action(a) for a in actions])

    @property
    def joint_dim(self) -> int:
        """Width of a :meth:`joint` row: ``shared_dim + action_dim + 1`` (the bias)."""
        return self.shared_dim + self.action_dim + 1

    def joint(self, context: Context, actions: Sequence[Action]) -> np.ndarray:
        """Shared vector, action vector and bias per candidate.

        Parameters
        ----------
        context: Context
            The customer's features, the request context and the decision point.
        actions: sequence of Action, length n_actions
            The candidates.

        Returns
        -------
        ndarray of float32, shape (n_actions, joint_dim)
        """
        n = len(actions)
        out = np.empty((n, self.joint_dim), dtype=np.float32)
        out[:, : self.shared_dim] = self.shared(context)
        out[:, self.shared_dim : -1] = self.actions(actions)
        out[:, -1] = 1.0
        return out
