"""VW shared examples built straight from a :class:`~policies.types.Context`, no text.

:func:`policies.vw.policy.shared_line` renders the shared example as VW text
(``shared |c <customer> |r dp=<point> <request>``) and VW's parser hashes it back.
:class:`SharedHasher` produces the same example without the round trip: each
feature's hashed index is asked from the workspace once
(``get_index_for_scalar_feature``, the text parser's own hash of the sanitised
token in its namespace, so models stay interchangeable with the text format) and
memoised; per decision only the values are computed, and the two namespaces are
pushed as arrays. Tokens are those of :func:`policies.featurize.shared_tokens`
(one-hot categories and missing indicators, ``sign·log1p`` numbers, ``*_ts`` as
ages in days); numeric zeros are left out, as the text parser drops them.

The one difference from the text path: values reach VW as the nearest float32
instead of a 6-significant-digit rendering re-parsed by VW's fast float parser
(relative difference below 1e-6; ``tests/policies/test_vw_fast.py`` checks indices
and values against the parsed line).

Reference: Weinberger et al., *Feature Hashing for Large Scale Multitask
Learning*, ICML 2009 (the hashing trick VW implements).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from core.compiled import compiled_or
from policies.featurize import TIMESTAMP_SUFFIX, age_days, numeric_value, token_name
from policies.types import Context, FeatureValue

_UNSAFE = str.maketrans({" ": "_", ":": "_", "|": "_", "\t": "_", "\n": "_", "\r": "_"})
_C, _R = ord("c"), ord("r")
_LIMIT = 200_000  # memo entries per namespace (categorical values can be unbounded)
_U64, _F32 = np.uint64, np.float32
_AGE = object()
_NONE: dict[Any, Any] = {}  # read-only stand-in for a name not memoised yet
_TEMPLATES = 20_000  # customer records memoised (about 1 KB each)


class SharedHasher:
    """Builds shared (core) examples for one VW workspace; see the module docstring."""

    _AGE = _AGE  # the marker of integer epochs in ``_ints`` (read by the compiled fill)

    def __init__(self, core: Any, vw: Any) -> None:
        self._index = core.get_index_for_scalar_feature
        self._core = core
        self._parse = vw._core._parse_line_text
        #: namespace → feature name → (hashed index, is a ``*_ts`` timestamp)
        self._numeric: dict[str, dict[str, tuple[int, bool]]] = {"c": {}, "r": {}}
        #: namespace → name → non-zero integer → (index, value), or ``_AGE`` for epochs
        self._ints: dict[str, dict[str, dict[int, object]]] = {"c": {}, "r": {}}
        #: namespace → name → value → hashed index of the one-hot token
        self._onehot: dict[str, dict[str, dict[FeatureValue, int]]] = {"c": {}, "r": {}}
        #: entries in ``_ints`` / ``_onehot`` per namespace (bounded by ``_LIMIT``)
        self._sizes: dict[str, int] = {"c": 0, "r": 0}
        self._points: dict[str, int] = {}
        #: id of a read-only customer record -> (record, indices, values, aged positions)
        self._templates: dict[int, tuple[Any, ...]] = {}

    def _fill(
        self,
        ns: str,
        features: Mapping[str, FeatureValue],
        now: float,
        idx: list[int],
        val: list[float],
    ) -> None:
        numeric, ints, onehot = self._numeric[ns], self._ints[ns], self._onehot[ns]
        push_i, push_v = idx.append, val.append
        log1p, copysign = math.log1p, math.copysign  # numeric_value, inlined
        for name, value in features.items():
            cls = value.__class__
            if cls is float:
                meta = numeric.get(name) or self._meta(ns, name)
                x = age_days(value, now) if meta[1] else value  # type: ignore[arg-type]
                if x:
                    push_i(meta[0])
                    push_v(copysign(log1p(abs(x)), x))
            elif cls is int:
                if not value and not name.endswith(TIMESTAMP_SUFFIX):
                    continue  # zero: VW drops it
                hit = ints.get(name, _NONE).get(value)
                if hit is None:
                    hit = self._int(ns, name, value)  # type: ignore[arg-type]
                if hit is _AGE:  # an integer epoch: its age changes with ``now``
                    x = age_days(float(value), now)  # type: ignore[arg-type]
                    if x:
                        push_i((numeric.get(name) or self._meta(ns, name))[0])
                        push_v(copysign(log1p(abs(x)), x))
                    continue
                push_i(hit[0])  # type: ignore[index]
                push_v(hit[1])  # type: ignore[index]
            else:  # str, bool or None: one-hot
                i = onehot.get(name, _NONE).get(value)
                if i is None:
                    i = self._onehot_index(ns, name, value)
                push_i(i)
                push_v(1.0)

    def _onehot_index(self, ns: str, name: str, value: FeatureValue) -> int:
        i: int = self._index(token_name(name, value).translate(_UNSAFE), None, ns)  # type: ignore[arg-type]
        self._remember(self._onehot[ns], ns, name, value, i)
        return i

    def _remember(
        self, table: dict[str, dict[Any, Any]], ns: str, name: str, value: Any, hit: Any
    ) -> None:
        if self._sizes[ns] < _LIMIT:
            table.setdefault(name, {})[value] = hit
            self._sizes[ns] += 1

    def _meta(self, ns: str, name: str) -> tuple[int, bool]:
        meta = (self._index(name.translate(_UNSAFE), None, ns), name.endswith(TIMESTAMP_SUFFIX))
        if len(self._numeric[ns]) < _LIMIT:
            self._numeric[ns][name] = meta
        return meta

    def _int(self, ns: str, name: str, value: int) -> object:
        meta = self._numeric[ns].get(name) or self._meta(ns, name)
        hit: object = _AGE if meta[1] else (meta[0], numeric_value(value))
        self._remember(self._ints[ns], ns, name, value, hit)
        return hit

    def _template(self, customer: Mapping[str, FeatureValue]) -> tuple[Any, ...] | None:
        """The customer namespace of a read-only record, hashed once: index and value
        arrays in ``_fill``'s order, with the positions and epochs of the ``*_ts``
        features whose age is recomputed per decision. ``None``: not memoisable."""
        hit = self._templates.get(id(customer))
        if hit is not None and hit[0] is customer:
            return hit
        # the whole namespace in one (compiled) fill at ``now = 0``: every ``*_ts``
        # feature then has an age of -1, so exactly one entry (its value is rewritten per
        # decision); where each lands follows from which features VW keeps: a number
        # only when it is not 0, anything else always
        _, idx, val = fill(self, "c", customer, 0.0)
        positions: list[int] = []
        epochs: list[float] = []
        n = 0
        for name, value in customer.items():
            cls = value.__class__
            if cls is float or cls is int:
                if name.endswith(TIMESTAMP_SUFFIX):
                    positions.append(n)
                    epochs.append(float(value))  # type: ignore[arg-type]
                    n += 1
                elif value:
                    n += 1
            else:
                n += 1
        if n != len(idx):  # pragma: no cover - the rule above and _fill disagree
            raise AssertionError("shared example template out of step with the fill")
        hit = (customer, idx, val, np.array(positions, np.intp), np.array(epochs, np.float64))
        self._templates[id(customer)] = hit  # holds the record: its id stays unique
        if len(self._templates) > _TEMPLATES:
            del self._templates[next(iter(self._templates))]
        return hit

    def _push_customer(self, ex: Any, customer: Mapping[str, FeatureValue], now: float) -> None:
        if customer.__class__ is MappingProxyType:  # read-only (the feature source's records)
            _, idx, template, positions, epochs = self._template(customer)
            val = aged_values(template, positions, epochs, now)
            if val is not None:  # None: an age of exactly 0, which VW drops: the long way
                if len(idx):
                    ex[_C].push_many_features(idx, val)
                return
        n, idx, val = fill(self, "c", customer, now)
        if n:
            ex[_C].push_many_features(idx, val)

    def example(self, context: Context) -> Any:
        """A new core example: the CB ``shared`` label, namespaces ``c`` then ``r``."""
        now = context.timestamp
        # VW's parse of an empty shared line: the CB ``shared`` label, no features, in a
        # third of the time of a new example plus a label set from Python
        ex = self._parse(self._core, "shared |")
        self._push_customer(ex, context.customer, now)
        point = context.decision_point
        dp = self._points.get(point)
        if dp is None:
            dp = self._index(f"dp={point}".translate(_UNSAFE), None, "r")
            if len(self._points) < 10_000:
                self._points[point] = dp
        _, idx, val = fill(self, "r", context.request, now, dp)
        ex[_R].push_many_features(idx, val)
        return ex


def fill_py(
    hasher: SharedHasher,
    ns: str,
    features: Mapping[str, FeatureValue],
    now: float,
    first: int | None = None,
) -> tuple[int, np.ndarray, np.ndarray]:
    """``(n, indices, values)`` of namespace ``ns`` (uint64 and float32 arrays of length
    ``n``), led by ``first`` with value 1 when given. The pure-Python twin of
    ``policies.vw._shared.fill`` (compiled; same bits, see the module docstring)."""
    idx: list[int] = [] if first is None else [first]
    val: list[float] = [] if first is None else [1.0]
    hasher._fill(ns, features, now, idx, val)
    return len(idx), np.array(idx, _U64), np.array(val, _F32)


def aged_values_py(
    template: np.ndarray, positions: np.ndarray, epochs: np.ndarray, now: float
) -> np.ndarray | None:
    """A copy of a customer template with the ages at ``now`` of its ``*_ts`` features
    (raw values ``epochs``) at ``positions``; ``None`` when an age is exactly 0 (VW drops
    a 0 value). The pure-Python twin of ``policies.vw._shared.aged_values``."""
    val = template.copy()
    for pos, epoch in zip(positions.tolist(), epochs.tolist(), strict=True):
        x = age_days(epoch, now)
        if not x:
            return None
        val[pos] = math.copysign(math.log1p(abs(x)), x)
    return val


#: :func:`fill_py`, compiled (``policies.vw._shared``) when it is built
fill = compiled_or("policies.vw._shared", "fill", fill_py)
#: :func:`aged_values_py`, compiled when it is built
aged_values = compiled_or("policies.vw._shared", "aged_values", aged_values_py)
