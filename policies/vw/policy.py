"""Vowpal Wabbit contextual bandit (``cb_explore_adf``) through vowpal-wabbit-next.

This module (with :mod:`policies.vw.shared`) is the only place that builds VW input
or labels. Each decision is one multi-line example: a ``shared`` line with the
customer namespace ``c`` and the request-context namespace ``r``, then one line per
eligible action with the action namespace ``a`` (its id, channel and features).
:func:`shared_line` and :func:`action_line` give the VW text; on the hot path the
shared example is built without text (same hashed indices, see
:mod:`policies.vw.shared`) and the example a decision was predicted with is reused to
learn from that decision. Quadratic interactions ``ca`` and
``ra`` let the learned value of an action depend on who the customer is; because
actions are described by features (action-dependent features, "ADF"), a new action
is scored from what was learned about similar ones, without retraining.

Exploration algorithms, all computed inside VW and returned as a pmf:

- ``epsilon``: ε-greedy (Langford & Zhang, *The Epoch-Greedy Algorithm*, NeurIPS 2007);
- ``softmax``: Boltzmann exploration with inverse temperature ``lambda`` (Sutton & Barto,
  *Reinforcement Learning: An Introduction*, 2nd ed. 2018, §13.1);
- ``squarecb``: Foster & Rakhlin, *Beyond UCB*, ICML 2020;
- ``bag``: bootstrap Thompson sampling (Agarwal et al., *Taming the Monster*, ICML 2014);
- ``cover``: online cover (Agarwal et al., ICML 2014).

References:
    Bietti, Agarwal & Langford, *A Contextual Bandit Bake-off*, JMLR 22 (2021).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from policies.base import BasePolicy
from policies.bulk import SharedColumns
from policies.errors import InvalidParameterError, ModelLoadError
from policies.featurize import TIMESTAMP_SUFFIX, Token, _tokens, age_days, numeric_value, token_name
from policies.types import Action, Context, FeatureValue, LoggedBatch
from policies.vw import batch as bulk
from policies.vw.labels import cost_from_reward
from policies.vw.shared import SharedHasher

_RECENT = 1_024  # shared examples kept for learning from the latest decisions (~6 MB)
_EXAMPLES = 10_000  # parsed action examples kept (by features, and by Action object)

EXPLORATIONS = ("epsilon", "softmax", "squarecb", "bag", "cover")
_UNSAFE = str.maketrans({" ": "_", ":": "_", "|": "_", "\t": "_", "\n": "_", "\r": "_"})


def _render(tokens: Sequence[Token]) -> str:
    return " ".join(f"{name.translate(_UNSAFE)}:{value:.6g}" for name, value in tokens)


_PIECES: dict[tuple[object, ...], str] = {}  # memo of rendered one-hot tokens / numeric names


def _render_features(features: Mapping[str, FeatureValue], now: float = 0.0) -> str:
    """VW text for a feature mapping, memoising everything that does not change per value.

    Same tokens as :func:`policies.featurize._tokens` (one-hot for categories, missing
    indicators, ``sign·log1p`` for numbers). Numeric zeros are left out: VW ignores a
    feature whose value is 0, in prediction and in learning alike.
    """
    parts: list[str] = []
    pieces = _PIECES
    for name, value in features.items():
        if value.__class__ is float or (value.__class__ is int and name.endswith(TIMESTAMP_SUFFIX)):
            x = age_days(float(value), now) if name.endswith(TIMESTAMP_SUFFIX) else value
            if x:
                key: tuple[object, ...] = (name, float)
                prefix = pieces.get(key)
                if prefix is None:
                    prefix = pieces[key] = name.translate(_UNSAFE) + ":"
                parts.append(f"{prefix}{numeric_value(x):.6g}")
            continue
        key = (name, value, value.__class__)  # 1, 1.0 and True must not share a piece
        piece = pieces.get(key)
        if piece is None:
            if isinstance(value, int) and not isinstance(value, bool):
                piece = (
                    f"{name.translate(_UNSAFE)}:{numeric_value(float(value)):.6g}" if value else ""
                )
            else:
                piece = token_name(name, value).translate(_UNSAFE) + ":1"
            if len(pieces) < 200_000:
                pieces[key] = piece
        if piece:
            parts.append(piece)
    return " ".join(parts)


def shared_line(context: Context) -> str:
    """The VW text of a decision's shared line: namespace ``c`` (customer), ``r`` (the
    decision point and request context), numbers as ``sign·log1p``, timestamps as ages.

    Parameters
    ----------
    context: Context
        The customer's features and the decision's context values.
    """
    dp = _render([(f"dp={context.decision_point}", 1.0)])
    now = context.timestamp
    request = _render_features(context.request, now)
    return f"shared |c {_render_features(context.customer, now)} |r {dp} {request}"


def action_line(action: Action) -> str:
    """The VW text of one candidate's line: namespace ``a`` (id, channel, features).

    Parameters
    ----------
    action: Action
        One eligible candidate.
    """
    tokens: list[Token] = [(f"id={action.id}", 1.0), (f"ch={action.channel}", 1.0)]
    _tokens("", action.features, tokens)
    return f"|a {_render(tokens)}"


@dataclass
class VWPolicy(BasePolicy):
    """Contextual bandit with VW's ``cb_explore_adf`` (see module docstring).

    Parameters
    ----------
    exploration: {"epsilon", "softmax", "squarecb", "bag", "cover"}, default "epsilon"
        VW's exploration algorithm.
    epsilon: float, default 0.05
        ε of ``epsilon``, ``bag`` and ``cover``, in ``[0, 1]``.
    softmax_lambda: float, default 10.0
        Inverse temperature of ``softmax``.
    squarecb_gamma_scale: float, default 10.0
        ``--gamma_scale`` of ``squarecb``.
    bag_size, cover_size: int, default 5 and 3
        Bootstrap size of ``bag``, policy-set size of ``cover``, ``>= 1``.
    learning_rate: float, default 0.5
        VW's ``-l``.
    bits: int, default 18
        Hash-table bits (``-b``), in ``[1, 30]``.
    cb_type: {"mtr", "ips", "dr", "dm"}, default "mtr"
        How VW estimates costs from logged bandit feedback.
    interactions: tuple of str, default ("ca", "ra")
        Quadratic namespace pairs (``-q``).
    exploration_floor: float, default 0.0
        Probability mass spread over every eligible action after VW's pmf.
    seed: int, default 0
        VW's ``--random_seed`` (saved with the model).

    References:
        Bietti, Agarwal & Langford, *A Contextual Bandit Bake-off*, JMLR 22 (2021); the
        exploration algorithms' papers are listed in the module docstring.
    """

    exploration: str = "epsilon"
    epsilon: float = 0.05
    softmax_lambda: float = 10.0
    squarecb_gamma_scale: float = 10.0
    bag_size: int = 5
    cover_size: int = 3
    learning_rate: float = 0.5
    bits: int = 18
    cb_type: str = "mtr"
    interactions: tuple[str, ...] = ("ca", "ra")
    exploration_floor: float = 0.0

    kind: ClassVar[str] = "vw-cb"
    warm_starts: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.exploration not in EXPLORATIONS:
            raise InvalidParameterError(
                f"exploration must be one of {', '.join(EXPLORATIONS)}, got {self.exploration!r}"
            )
        if not 0.0 <= self.epsilon <= 1.0:
            raise InvalidParameterError("epsilon must lie in [0, 1]")
        if self.bag_size < 1 or self.cover_size < 1:
            raise InvalidParameterError("bag_size and cover_size must be >= 1")
        if not 1 <= self.bits <= 30:
            raise InvalidParameterError("bits must lie in [1, 30]")
        if self.cb_type not in ("mtr", "ips", "dr", "dm"):
            raise InvalidParameterError("cb_type must be one of mtr, ips, dr, dm")
        self.interactions = tuple(self.interactions)
        self._build(None)
        self._line_cache: dict[tuple[object, ...], str] = {}

    def vw_args(self) -> list[str]:
        """The VW command line these fields stand for."""
        args = [
            "--cb_explore_adf",
            "--quiet",
            "--cb_type",
            self.cb_type,
            "-b",
            str(self.bits),
            "-l",
            str(self.learning_rate),
            "--random_seed",
            str(self.seed),
        ]
        for pair in self.interactions:
            args += ["-q", pair]
        match self.exploration:
            case "epsilon":
                args += ["--epsilon", str(self.epsilon)]
            case "softmax":
                args += ["--softmax", "--lambda", str(self.softmax_lambda)]
            case "squarecb":
                args += ["--squarecb", "--gamma_scale", str(self.squarecb_gamma_scale)]
            case "bag":
                args += ["--bag", str(self.bag_size), "--epsilon", str(self.epsilon)]
            case "cover":
                args += ["--cover", str(self.cover_size), "--epsilon", str(self.epsilon)]
        return args

    def _build(self, model: bytes | None) -> None:
        import vowpal_wabbit_next as vw  # heavy import kept out of module import

        self._vw = vw
        try:
            args = self.vw_args()
            if model is not None:
                # A saved model carries its random state (``--bag`` advances the seed it
                # saves, and VW refuses a load whose --random_seed disagrees).
                at = args.index("--random_seed")
                del args[at : at + 2]
            self._ws = vw.Workspace(args, model_data=model)
        except Exception as exc:  # VW raises RuntimeError / ValueError on bad models
            raise ModelLoadError(f"vw-cb: cannot build workspace: {exc}") from exc
        self._parser = vw.TextFormatParser(self._ws)
        self._core = self._ws._workspace
        self._hasher = SharedHasher(self._core, vw)
        # oldest first, evicted in O(1) (a plain dict's front slows as it is popped)
        self._example_cache: OrderedDict[tuple[object, ...], Any] = OrderedDict()
        self._example_by_object: OrderedDict[int, tuple[Action, Any]] = OrderedDict()
        # Shared examples of the latest decisions, by Context object: learning from a
        # decision just made reuses the example its prediction was made with.
        self._recent: OrderedDict[int, tuple[Context, Any]] = OrderedDict()
        # Per action, the example learning labels (relabelled at every use).
        self._labelled: dict[int, tuple[Action, Any]] = {}

    def _action_text(self, action: Action) -> str:
        key = (action.id, action.channel, *action.features.items())
        text = self._line_cache.get(key)
        if text is None:
            text = action_line(action)
            if len(self._line_cache) < 100_000:
                self._line_cache[key] = text
        return text

    def _examples(self, context: Context, actions: Sequence[Action]) -> list[Any]:
        """Freshly built examples (the reference the cached paths must agree with)."""
        vw = self._vw
        wrap = vw.Example
        parse = self._parser.parse_line
        shared = wrap(_existing_example=self._hasher.example(context), _label_type=vw.LabelType.CB)
        return [shared] + [parse(self._action_text(a)) for a in actions]

    def _action_examples(self, actions: Sequence[Action]) -> list[Any]:
        """Parsed (core) action examples, built once per action and reused.

        Prediction leaves an unlabelled action example as it found it (checked by
        ``test_vw_cached_examples_predict_like_fresh_ones``); learning reuses the
        unlabelled ones and labels a fresh copy of the chosen one.
        """
        parse = self._parser.parse_line
        cache = self._example_cache
        by_object = self._example_by_object
        out = []
        for action in actions:
            hit = by_object.get(id(action))
            if hit is not None and hit[0] is action:  # the same (catalog) Action object
                out.append(hit[1])
                continue
            key = (action.id, action.channel, *action.features.items())
            example = cache.get(key)
            if example is None:
                example = parse(self._action_text(action))._example
                if len(cache) >= _EXAMPLES:  # the oldest goes: features drift (agents' load)
                    cache.popitem(last=False)
                cache[key] = example
            if len(by_object) >= _EXAMPLES:
                by_object.popitem(last=False)
            by_object[id(action)] = (action, example)  # holds the object: id stays unique
            out.append(example)
        return out

    def _shared(self, context: Context) -> Any:
        """The shared example of ``context``: reused when this very object was just seen."""
        recent = self._recent
        hit = recent.get(id(context))
        if hit is not None and hit[0] is context:
            return hit[1]
        example = self._hasher.example(context)
        recent[id(context)] = (context, example)  # holds the object: id stays unique
        if len(recent) > _RECENT:
            recent.popitem(last=False)  # the oldest (O(1), unlike a plain dict's front)
        return example

    def _shared_to_learn(self, context: Context) -> Any:
        """The example the decision on ``context`` was predicted with, released from the
        cache (learnt once), or a new one for a context not decided here."""
        hit = self._recent.pop(id(context), None)
        if hit is not None and hit[0] is context:
            return hit[1]
        return self._hasher.example(context)

    def raw_pmf(self, context: Context, actions: Sequence[Action]) -> list[float]:
        """VW's exploration pmf over the candidates, in their order.

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
        # The wrapper checks every example's label type on every call, a cost of the
        # order of the prediction itself (BENCHMARKS.md, "Serving: notes"); every example
        # here is built for this workspace with a CB label, so call the core directly
        # (the package is pinned to 0.7.0).
        examples = self._action_examples(actions)
        examples.insert(0, self._shared(context))
        pmf = [0.0] * len(actions)
        for index, prob in self._core.predict_multi_ex_one(examples):
            pmf[index] = prob
        return pmf

    def learn(self, batch: LoggedBatch) -> None:
        """One VW update per logged round, labelled ``(cost, probability)`` on the chosen
        candidate.

        Parameters
        ----------
        batch: LoggedBatch, n_rounds rows
            Contexts, candidates, chosen index, logging propensity and reward of each
            round (the propensity enters VW's ``cb_type`` estimate).
        """
        label = self._vw.CBLabel
        parse = self._parser.parse_line
        learn = self._core.learn_multi_ex_one
        twins = self._labelled
        for context, actions, idx, prob, reward in zip(
            batch.contexts,
            batch.actions,
            np.asarray(batch.chosen, dtype=np.int64).tolist(),
            np.asarray(batch.probabilities, dtype=float).tolist(),
            np.asarray(batch.rewards, dtype=float).tolist(),
            strict=True,
        ):
            examples = self._action_examples(actions)
            action = actions[idx]
            twin = twins.get(id(action))
            if twin is None or twin[0] is not action:
                twin = (action, parse(self._action_text(action))._example)
                if len(twins) < 10_000:
                    twins[id(action)] = twin  # holds the object: id stays unique
            chosen = twin[1]  # a labelled copy: the cached unlabelled one stays unlabelled
            chosen._set_label(label(label=(cost_from_reward(reward), float(prob))))
            examples[idx] = chosen
            examples.insert(0, self._shared_to_learn(context))
            learn(examples)

    def learn_logged(
        self,
        batch: LoggedBatch,
        features: SharedColumns,
        progress: Callable[[int], None] | None = None,
        chunk: int = 2000,
    ) -> None:
        """:meth:`learn` over a whole logged batch (the :class:`~policies.bulk.BulkLearner`
        hook): the same examples, labels and order, so the same model, with the shared
        examples pushed as arrays from ``features`` (see :mod:`policies.vw.batch`)."""
        bulk.learn(self, batch, features, progress, chunk)  # type: ignore[arg-type]

    def pmf_logged(self, batch: LoggedBatch, features: SharedColumns) -> list[np.ndarray]:
        """:meth:`pmf` of every row of ``batch``, in row order, from ``features`` (the
        :class:`~policies.bulk.BulkLearner` hook; same pmfs as row by row)."""
        return bulk.pmfs(self, batch, features)  # type: ignore[arg-type]

    def _state(self) -> bytes:
        return self._ws.serialize()

    def _restore(self, payload: bytes) -> None:
        if payload:
            self._build(payload)
