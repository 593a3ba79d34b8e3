"""Bulk learning and scoring for :class:`policies.vw.policy.VWPolicy` over a whole logged batch.

``VWPolicy.learn`` and ``VWPolicy.pmf`` build each shared example from its context one
feature at a time (:class:`policies.vw.shared.SharedHasher`). Here the shared features
of every row come from a :class:`SharedColumns` (columnar, numpy: what training builds), each
distinct token is hashed once per workspace
(``get_index_for_scalar_feature``, as the hasher does), and per row only two array
pushes remain. Action examples, labels, the workspace calls and their order are the
policy's own, so the learned weights and the predictions are the same as the
per-example path (``tests/training/test_fast_path.py`` compares the saved bytes and
every pmf).

Reference: Bietti, Agarwal & Langford, *A Contextual Bandit Bake-off*, JMLR 22 (2021)
(the ``cb_explore_adf`` reductions the examples feed).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from policies.draw import apply_floor
from policies.types import LoggedBatch
from policies.vw.labels import cost_from_reward

if TYPE_CHECKING:
    from policies.vw.policy import VWPolicy


@runtime_checkable
class TokenColumns(Protocol):
    """Tokens of ``n`` rows in one namespace, flat: entries ``ptr[i]:ptr[i+1]`` are row
    ``i``'s, in its feature order; ``tok`` indexes ``tokens`` and ``val`` is each entry's
    featurised value (``sign·log1p`` of a number, ``1.0`` for one-hot)."""

    @property
    def ptr(self) -> np.ndarray:
        """Row offsets, shape ``(n + 1,)``, int64."""
        ...

    @property
    def tok(self) -> np.ndarray:
        """Token of each entry, shape ``(m,)``, int64."""
        ...

    @property
    def val(self) -> np.ndarray:
        """Value of each entry, shape ``(m,)``, float64."""
        ...

    @property
    def tokens(self) -> Sequence[object]:
        """The distinct tokens."""
        ...

    def token_text(self, i: int) -> str:
        """Token ``i`` as the per-example featuriser names it."""
        ...


@runtime_checkable
class SharedColumns(Protocol):
    """Customer (``c``) and request (``r``) token columns and the decision point of ``n``
    contexts: the shared features of a whole batch, built by the caller (training's
    columnar features satisfy it), so this module never depends on its trainer."""

    @property
    def customer(self) -> TokenColumns: ...

    @property
    def request(self) -> TokenColumns: ...

    @property
    def decision_points(self) -> Sequence[str]: ...

    def __len__(self) -> int: ...

_UNSAFE = str.maketrans({" ": "_", ":": "_", "|": "_", "\t": "_", "\n": "_", "\r": "_"})
_C, _R = ord("c"), ord("r")


def _hashed(policy: VWPolicy, stream: TokenColumns, ns: str) -> np.ndarray:
    """VW's hashed index of each entry of ``stream`` in namespace ``ns``, shape ``(m,)``."""
    index = policy._core.get_index_for_scalar_feature
    table = np.fromiter(
        (
            index(stream.token_text(i).translate(_UNSAFE), None, ns)
            for i in range(len(stream.tokens))
        ),
        dtype=np.uint64,
        count=len(stream.tokens),
    )
    return table[stream.tok]


def _shared_arrays(policy: VWPolicy, features: SharedColumns) -> tuple[Any, ...]:
    """``(c_idx, c_val, c_ptr, r_idx, r_val, r_ptr)``: hashed indices (uint64) and values
    (float32) of namespaces ``c`` and ``r`` of every row, row ``i``'s entries at
    ``ptr[i]:ptr[i + 1]`` (int64); ``r`` holds the row's ``dp=<point>`` first."""
    c, r = features.customer, features.request
    n = len(features)
    index = policy._core.get_index_for_scalar_feature
    points = {
        p: index(f"dp={p}".translate(_UNSAFE), None, "r") for p in set(features.decision_points)
    }
    r_ptr = r.ptr + np.arange(n + 1)
    r_idx = np.empty(len(r.tok) + n, dtype=np.uint64)
    r_val = np.empty(len(r.tok) + n, dtype=np.float32)
    head = r_ptr[:-1]
    body = np.ones(len(r_idx), dtype=bool)
    body[head] = False
    r_idx[head] = [points[p] for p in features.decision_points]
    r_val[head] = 1.0
    r_idx[body] = _hashed(policy, r, "r")
    r_val[body] = r.val
    c_ptr = np.ascontiguousarray(c.ptr, dtype=np.int64)
    return _hashed(policy, c, "c"), c.val.astype(np.float32), c_ptr, r_idx, r_val, r_ptr


def _shared(parse: Any, core: Any, arrays: tuple[Any, ...], i: int) -> Any:
    """Row ``i``'s new core shared example, as ``SharedHasher.example`` builds it: VW's
    parse of an empty shared line (the CB ``shared`` label, in a third of the time of a
    new example plus a label set from Python), then ``c`` (when the row has customer
    tokens) and ``r`` pushed as arrays."""
    c_idx, c_val, c_ptr, r_idx, r_val, r_ptr = arrays
    ex = parse(core, "shared |")
    s, e = int(c_ptr[i]), int(c_ptr[i + 1])
    if e > s:
        ex[_C].push_many_features(c_idx[s:e], c_val[s:e])
    s, e = int(r_ptr[i]), int(r_ptr[i + 1])
    ex[_R].push_many_features(r_idx[s:e], r_val[s:e])
    return ex


def shared_examples(policy: VWPolicy, features: SharedColumns) -> Iterator[Any]:
    """One new core shared example per row (see :func:`_shared`)."""
    parse, core = policy._vw._core._parse_line_text, policy._core
    arrays = _shared_arrays(policy, features)
    for i in range(len(features)):
        yield _shared(parse, core, arrays, i)


def _learn_rows(
    policy: VWPolicy,
    batch: LoggedBatch,
    arrays: tuple[Any, ...],
    progress: Callable[[int], None] | None,
    chunk: int,
) -> None:
    """Learn from every row of ``batch``, in order: its shared example (from the six
    :func:`_shared_arrays`), the policy's cached examples of its actions, the chosen one
    replaced by its labelled twin; ``progress(k)`` after every ``chunk`` rows."""
    parse, core = policy._vw._core._parse_line_text, policy._core  # what parse_line wraps
    learn, labelled, actions_of = core.learn_multi_ex_one, _labelled(policy), _action_lists(policy)
    chosen = np.asarray(batch.chosen, dtype=np.int64).tolist()
    probs = np.asarray(batch.probabilities, dtype=float).tolist()
    costs = [cost_from_reward(r) for r in np.asarray(batch.rewards, dtype=float).tolist()]
    n = len(batch.actions)
    for i, acts in enumerate(batch.actions):
        idx = chosen[i]
        examples = [_shared(parse, core, arrays, i), *actions_of(acts)]
        examples[idx + 1] = labelled(acts[idx], costs[i], probs[i])
        learn(examples)
        if progress is not None and (i + 1) % chunk == 0:
            progress(chunk)
    if progress is not None and n % chunk:
        progress(n % chunk)


def _action_lists(policy: VWPolicy) -> Callable[[Any], list[Any]]:
    """``policy._action_examples`` memoised per action-list object (the join shares one
    list between all rows logged with the same actions); a fresh list each call."""
    memo: dict[int, tuple[Any, list[Any]]] = {}

    def get(actions: Any) -> list[Any]:
        hit = memo.get(id(actions))
        if hit is None or hit[0] is not actions:
            hit = memo[id(actions)] = (actions, policy._action_examples(actions))
        return list(hit[1])

    return get


def _labelled(policy: VWPolicy, limit: int = 4096) -> Callable[[Any, float, float], Any]:
    """The chosen action's example with the CB label ``(cost, probability)``: one parsed
    example per (action object, cost, probability), labelled once and reused (logs
    repeat a few propensities and rewards), so a row costs no parse and no relabel.
    Past ``limit`` distinct labels, one example per action is relabelled at each use,
    as ``VWPolicy.learn`` does."""
    label = policy._vw.CBLabel
    parse, core = policy._vw._core._parse_line_text, policy._core  # what parse_line wraps
    memo: dict[tuple[int, float, float, float], tuple[Any, Any]] = {}
    twins: dict[int, tuple[Any, Any]] = {}

    def get(action: Any, cost: float, prob: float) -> Any:
        key = (id(action), cost, prob, math.copysign(1.0, cost))  # -0.0 is not 0.0 here
        hit = memo.get(key)
        if hit is not None and hit[0] is action:
            return hit[1]
        if len(memo) < limit:
            example = parse(core, policy._action_text(action))
            example._set_label(label(label=(cost, prob)))
            memo[key] = (action, example)  # holds the object: its id stays unique
            return example
        twin = twins.get(id(action))
        if twin is None or twin[0] is not action:
            twin = twins[id(action)] = (action, parse(core, policy._action_text(action)))
        twin[1]._set_label(label(label=(cost, prob)))
        return twin[1]

    return get


def learn(
    policy: VWPolicy,
    batch: LoggedBatch,
    features: SharedColumns,
    progress: Callable[[int], None] | None = None,
    chunk: int = 2000,
) -> None:
    """``policy.learn(batch)`` (same examples, labels and order), the shared examples
    built from ``features`` (the :class:`SharedColumns` of ``batch.contexts``)."""
    if len(features) != len(batch):
        raise ValueError("features and batch have different lengths")
    _learn_rows(policy, batch, _shared_arrays(policy, features), progress, chunk)


def pmfs(policy: VWPolicy, batch: LoggedBatch, features: SharedColumns) -> list[np.ndarray]:
    """``policy.pmf(context, actions)`` of every row, floor applied, in row order: one
    array of shape ``(n_actions,)`` per row."""
    if len(features) != len(batch):
        raise ValueError("features and batch have different lengths")
    parse, core = policy._vw._core._parse_line_text, policy._core
    predict, actions_of = core.predict_multi_ex_one, _action_lists(policy)
    arrays = _shared_arrays(policy, features)
    floor = float(policy.exploration_floor)
    out = []
    for i, acts in enumerate(batch.actions):
        examples = [_shared(parse, core, arrays, i), *actions_of(acts)]
        pmf = [0.0] * len(acts)
        for index, prob in predict(examples):
            pmf[index] = prob
        out.append(np.asarray(apply_floor(pmf, floor)))
    return out
