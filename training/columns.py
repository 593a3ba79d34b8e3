"""Shared features of many logged contexts at once, in columnar form.

:func:`policies.featurize.shared_tokens` turns one context into tokens, one Python
step per feature. Training asks the same question of tens of thousands of contexts
(the reward model's dense vectors, Vowpal Wabbit's shared examples), so here the rows
are grouped by their feature names (rows logged by the same feature service share
them, in the same order) and each feature becomes a column: ``*_ts`` ages in days are
computed with numpy, ``sign·log1p`` with Python's ``math.log1p`` (the C library's, the
function the compiled stream and the per-row featurisers call; NumPy's own ``log1p``
loops may differ from it in the last bit), categories are mapped to tokens once per
distinct value. The result is a token stream per namespace, in row order
and, within a row, in the row's own feature order — exactly the order the per-row
featurisers visit, so sums come out bit for bit the same
(``tests/training/test_fast_path.py`` checks it).

Token semantics are those of :mod:`policies.featurize`: a value whose class is
exactly ``float`` or ``int`` is numeric (zero left out), anything else (``str``,
``bool``, ``None``) is one-hot through :func:`~policies.featurize.token_name`.

Reference: Weinberger et al., *Feature Hashing for Large Scale Multitask Learning*,
ICML 2009 (the hashing trick the dense view applies).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.compiled import compiled_module
from policies.featurize import (
    DAY,
    TIMESTAMP_SUFFIX,
    DenseFeaturizer,
    age_days,
    numeric_value,
    token_name,
)
from policies.types import Context, FeatureValue
from training.logs.reader import LoggedFeatures

#: a token: (feature name, value) for one-hot tokens, (feature name, NUMERIC) for numbers
Token = tuple[str, object]
NUMERIC = object()
_values = operator.methodcaller("values")
_NUMBERS = frozenset({float, int})
_ONEHOT = frozenset({str, bool, type(None)})

#: the compiled token stream (``training._columns``), ``None`` when it is not built
_compiled = compiled_module("training._columns")


@dataclass(frozen=True)
class TokenStream:
    """Tokens of ``n`` rows in one namespace, flat: entries ``ptr[i]:ptr[i+1]`` are row
    ``i``'s, in its feature order. ``tok`` indexes ``tokens``; ``val`` is the value the
    featuriser gives the token (``sign·log1p`` of a number, ``1.0`` for one-hot)."""

    ptr: np.ndarray  # (n + 1,) int64
    tok: np.ndarray  # (m,) int64
    val: np.ndarray  # (m,) float64
    tokens: list[Token]

    @property
    def rows(self) -> np.ndarray:
        """Row of each entry, shape ``(m,)``."""
        return np.repeat(np.arange(len(self.ptr) - 1), np.diff(self.ptr))

    def token_text(self, i: int) -> str:
        name, value = self.tokens[i]
        return name if value is NUMERIC else token_name(name, value)  # type: ignore[arg-type]


def _signed_log1p(x: np.ndarray) -> np.ndarray:
    """:func:`~policies.featurize.numeric_value` of each entry of ``x``, shape ``(n,)``:
    the C library's ``log1p`` through ``math.log1p``, as the compiled stream computes it."""
    return np.fromiter(map(numeric_value, x.tolist()), dtype=np.float64, count=len(x))


def _numeric(x: float, is_ts: bool, now: float) -> float:
    return age_days(x, now) if is_ts else x


def _column(
    name: str, col: Sequence[Any], now: np.ndarray, table: dict[Token, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(token ids, values, kept) of one feature column, each shape ``(len(col),)``."""
    n = len(col)
    is_ts = name.endswith(TIMESTAMP_SUFFIX)
    types = set(map(type, col))
    if types <= _NUMBERS:
        try:
            x = np.array(col, dtype=np.float64)
        except OverflowError:  # an int beyond float range: per element below
            x = None
        if x is not None:
            if is_ts:
                x = np.where((x <= 0.0) | (now <= 0.0), -1.0, np.maximum(0.0, (now - x) / DAY))
            key = (name, NUMERIC)
            tok = table.setdefault(key, len(table))
            return (
                np.full(n, tok, dtype=np.int64),
                _signed_log1p(x),
                x != 0.0,
            )
    vals = np.ones(n, dtype=np.float64)
    keep = np.ones(n, dtype=bool)
    if types <= _ONEHOT:
        # one-hot only, and no two values of different classes compare equal (as
        # True == 1 would): a token per distinct value, looked up in C
        lut = {v: table.setdefault((name, (v.__class__, v)), len(table)) for v in set(col)}
        return np.fromiter(map(lut.__getitem__, col), dtype=np.int64, count=n), vals, keep
    toks = np.empty(n, dtype=np.int64)
    for i, value in enumerate(col):
        cls = value.__class__
        if cls is float or cls is int:
            x = _numeric(float(value), is_ts, float(now[i]))
            toks[i] = table.setdefault((name, NUMERIC), len(table))
            vals[i] = math.copysign(math.log1p(abs(x)), x)
            keep[i] = bool(x)
        else:
            toks[i] = table.setdefault((name, (cls, value)), len(table))
    return toks, vals, keep


def token_stream(rows: Sequence[Mapping[str, FeatureValue]], now: np.ndarray) -> TokenStream:
    """The :class:`TokenStream` of feature mappings ``rows`` observed at times ``now``
    (epoch seconds, shape ``(len(rows),)``; ``*_ts`` features become ages at ``now``):
    compiled (:mod:`training._columns`, one pass over the rows) when built, else
    :func:`token_stream_py`."""
    if _compiled is None:
        return token_stream_py(rows, now)
    now = np.ascontiguousarray(now, dtype=np.float64)
    return TokenStream(*_compiled.token_stream(rows, now, NUMERIC, LoggedFeatures))


def token_stream_py(rows: Sequence[Mapping[str, FeatureValue]], now: np.ndarray) -> TokenStream:
    """Pure-Python (numpy) twin of the compiled token stream: rows grouped by their
    feature names, one numpy column per feature. Same entries (tokens and values, the
    same bits: the same ``log1p``) in the same order; the token table is numbered column
    by column instead."""
    n = len(rows)
    names_of = list(map(tuple, rows))
    values_of = list(map(list, map(_values, rows)))
    if len(set(names_of)) == 1:
        groups = {names_of[0]: list(range(n))}
    else:
        groups = {}
        for i, names in enumerate(names_of):
            groups.setdefault(names, []).append(i)
    table: dict[Token, int] = {}
    parts_row, parts_tok, parts_val = [], [], []
    for names, members in groups.items():
        if not names:
            continue
        idx = np.asarray(members, dtype=np.int64)
        at = now[idx]
        chosen = values_of if len(members) == n else [values_of[i] for i in members]
        columns = list(zip(*chosen, strict=True))
        toks, vals, keeps = zip(
            *(_column(name, col, at, table) for name, col in zip(names, columns, strict=True)),
            strict=True,
        )
        keep = np.column_stack(keeps).ravel()
        parts_row.append(np.repeat(idx, len(names))[keep])
        parts_tok.append(np.column_stack(toks).ravel()[keep])
        parts_val.append(np.column_stack(vals).ravel()[keep])
    if len(parts_row) == 1:  # one group: already in row order
        row, tok, val = parts_row[0], parts_tok[0], parts_val[0]
    elif parts_row:
        row = np.concatenate(parts_row)
        order = np.argsort(row, kind="stable")  # groups interleave; a row's order is kept
        row, tok, val = (
            row[order],
            np.concatenate(parts_tok)[order],
            np.concatenate(parts_val)[order],
        )
    else:
        row = tok = np.zeros(0, dtype=np.int64)
        val = np.zeros(0, dtype=np.float64)
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(row, minlength=n), out=ptr[1:])
    tokens: list[Token] = [None] * len(table)  # type: ignore[list-item]
    for (name, value), i in table.items():
        tokens[i] = (name, value if value is NUMERIC else value[1])  # type: ignore[index]
    return TokenStream(ptr, tok, val, tokens)


@dataclass(frozen=True)
class SharedFeatures:
    """Customer (``c``) and request (``r``) token streams and the decision point of
    ``n`` contexts: everything a shared featurisation reads."""

    customer: TokenStream
    request: TokenStream
    decision_points: list[str]

    def __len__(self) -> int:
        return len(self.decision_points)

    @classmethod
    def of(cls, contexts: Sequence[Context]) -> SharedFeatures:
        now = np.fromiter((c.timestamp for c in contexts), dtype=np.float64, count=len(contexts))
        return cls(
            token_stream([c.customer for c in contexts], now),
            token_stream([c.request for c in contexts], now),
            [c.decision_point for c in contexts],
        )

    def dense(self, featurizer: DenseFeaturizer) -> np.ndarray:
        """``featurizer.shared`` of every context, shape ``(n, shared_dim)``, float32 —
        the same sums in the same order, so the same numbers."""
        dim, n, slot = featurizer.shared_dim, len(self), featurizer._slot
        keys, weights = [], []
        for prefix, stream in (("c.", self.customer), ("r.", self.request)):
            where = np.empty(len(stream.tokens), dtype=np.int64)
            sign = np.empty(len(stream.tokens), dtype=np.float64)
            for i, (name, value) in enumerate(stream.tokens):
                text = prefix + name if value is NUMERIC else token_name(prefix + name, value)  # type: ignore[arg-type]
                where[i], sign[i] = slot(text, dim)
            keys.append(stream.rows * dim + where[stream.tok])
            weights.append(sign[stream.tok] * stream.val)
        out = np.bincount(
            np.concatenate(keys), weights=np.concatenate(weights), minlength=n * dim
        ).reshape(n, dim)
        points = {p: slot(f"dp={p}", dim) for p in set(self.decision_points)}
        where_dp = np.array([points[p][0] for p in self.decision_points], dtype=np.int64)
        sign_dp = np.array([points[p][1] for p in self.decision_points], dtype=np.float64)
        out[np.arange(n), where_dp] += sign_dp
        return out.astype(np.float32)


_CACHE: dict[int, tuple[object, SharedFeatures]] = {}


def shared_features(contexts: Sequence[Context]) -> SharedFeatures:
    """:meth:`SharedFeatures.of`, memoised for the last few context lists (the reward
    model and the VW batch path read the same held-out and training rows)."""
    hit = _CACHE.get(id(contexts))
    if hit is not None and hit[0] is contexts:
        return hit[1]
    features = SharedFeatures.of(contexts)
    if len(_CACHE) >= 4:
        del _CACHE[next(iter(_CACHE))]
    _CACHE[id(contexts)] = (contexts, features)
    return features
