"""Bulk learning and scoring for :class:`policies.vw.VWPolicy` over a whole logged batch.

``VWPolicy.learn`` and ``VWPolicy.pmf`` build each shared example from its context one
feature at a time (:class:`policies.vw_shared.SharedHasher`). Here the shared features
of every row come from :class:`training.columns.SharedFeatures` (columnar, numpy), each
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
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from policies.base import apply_floor
from policies.types import LoggedBatch
from policies.vw import VWPolicy, cost_from_reward

if TYPE_CHECKING:
    from training.columns import SharedFeatures, TokenStream

_UNSAFE = str.maketrans({" ": "_", ":": "_", "|": "_", "\t": "_", "\n": "_", "\r": "_"})
_C, _R = ord("c"), ord("r")


def _hashed(policy: VWPolicy, stream: TokenStream, ns: str) -> np.ndarray:
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


def shared_examples(policy: VWPolicy, features: SharedFeatures) -> Iterator[Any]:
    """One new core shared example per row, as ``SharedHasher.example`` builds it: the CB
    ``shared`` label, namespace ``c`` (when the row has customer tokens), then ``r``
    holding ``dp=<point>`` followed by the request tokens."""
    # VW's parser gives an empty example with the CB ``shared`` label in a third of the
    # time of a new example plus a label set from Python; the features are pushed after
    parse, core = policy._vw._core._parse_line_text, policy._core
    c, r = features.customer, features.request
    c_idx, c_val, c_ptr = _hashed(policy, c, "c"), c.val.astype(np.float32), c.ptr.tolist()
    n = len(features)
    index = policy._core.get_index_for_scalar_feature
    points = {
        p: index(f"dp={p}".translate(_UNSAFE), None, "r") for p in set(features.decision_points)
    }
    # r with each row's dp token in front: row i's entries are r_ptr[i]:r_ptr[i + 1]
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
    r_bounds = r_ptr.tolist()
    for i in range(n):
        ex = parse(core, "shared |")
        s, e = c_ptr[i], c_ptr[i + 1]
        if e > s:
            ex[_C].push_many_features(c_idx[s:e], c_val[s:e])
        s, e = r_bounds[i], r_bounds[i + 1]
        ex[_R].push_many_features(r_idx[s:e], r_val[s:e])
        yield ex


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
    features: SharedFeatures,
    progress: Callable[[int], None] | None = None,
    chunk: int = 2000,
) -> None:
    """``policy.learn(batch)`` (same examples, labels and order), the shared examples
    built from ``features`` (the :class:`~training.columns.SharedFeatures` of
    ``batch.contexts``)."""
    if len(features) != len(batch):
        raise ValueError("features and batch have different lengths")
    labelled = _labelled(policy)
    core_learn = policy._core.learn_multi_ex_one
    actions_of = _action_lists(policy)
    shared = shared_examples(policy, features)
    rows = zip(
        batch.actions,
        np.asarray(batch.chosen, dtype=np.int64).tolist(),
        np.asarray(batch.probabilities, dtype=float).tolist(),
        np.asarray(batch.rewards, dtype=float).tolist(),
        shared,
        strict=True,
    )
    for done, (actions, idx, prob, reward, shared_ex) in enumerate(rows, 1):
        examples = actions_of(actions)
        examples[idx] = labelled(actions[idx], cost_from_reward(reward), prob)
        examples.insert(0, shared_ex)
        core_learn(examples)
        if progress is not None and done % chunk == 0:
            progress(chunk)
    if progress is not None and len(batch) % chunk:
        progress(len(batch) % chunk)


def pmfs(policy: VWPolicy, batch: LoggedBatch, features: SharedFeatures) -> list[np.ndarray]:
    """``policy.pmf(context, actions)`` of every row, floor applied, in row order."""
    predict = policy._core.predict_multi_ex_one
    actions_of = _action_lists(policy)
    floor = policy.exploration_floor
    out = []
    for actions, shared_ex in zip(batch.actions, shared_examples(policy, features), strict=True):
        examples = actions_of(actions)
        examples.insert(0, shared_ex)
        pmf = [0.0] * len(actions)
        for index, prob in predict(examples):
            pmf[index] = prob
        out.append(np.asarray(apply_floor(pmf, floor)))
    return out
