# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled token streams: :func:`training.columns.token_stream_py` in one pass over
the rows instead of one numpy column per feature.

Same tokens, in the same order (row by row, within a row the mapping's own order),
same arithmetic: ``sign·log1p`` and ``*_ts`` ages in days in C doubles, with the C
library's ``log1p`` (which ``math.log1p`` and NumPy's ``log1p`` call too). Only the
numbering of the token table differs (first appearance here, column by column in the
twin); ``tests/training/test_columns_compiled.py`` compares the entries' tokens and
values bit for bit.

Reference: Weinberger et al., *Feature Hashing for Large Scale Multitask Learning*,
ICML 2009.
"""

from cpython.dict cimport PyDict_GetItem, PyDict_Next
from cpython.object cimport PyObject
from libc.math cimport copysign, fabs, log1p
from libc.stdint cimport int64_t

import numpy as np

cdef double _DAY = 86_400.0


cdef class _Name:
    """Per feature name: its numeric token (``-1`` until seen), whether it is a
    ``*_ts`` timestamp, and its one-hot tokens by value."""

    cdef Py_ssize_t numeric
    cdef bint is_ts
    cdef dict onehot

    def __cinit__(self, str name):
        self.numeric = -1
        self.is_ts = name.endswith("_ts")
        self.onehot = {}


cdef inline double _age(double ts, double now) noexcept:
    """``policies.featurize.age_days``."""
    if ts <= 0.0 or now <= 0.0:
        return -1.0
    cdef double d = (now - ts) / _DAY
    return d if d > 0.0 else 0.0


def token_stream(rows, double[::1] now, object numeric_marker):
    """``(ptr, tok, val, tokens)`` of the feature mappings ``rows`` observed at ``now``;
    see :class:`training.columns.TokenStream`. ``numeric_marker`` is the value of a
    numeric token in ``tokens``."""
    cdef Py_ssize_t n = len(rows)
    if now.shape[0] != n:
        raise ValueError("rows and now have different lengths")
    cdef Py_ssize_t i, pos, m = 0, cap = 0
    cdef list row_list = list(rows)
    for row in row_list:
        cap += len(row)
    ptr_arr = np.zeros(n + 1, dtype=np.int64)
    tok_arr = np.empty(cap, dtype=np.int64)
    val_arr = np.empty(cap, dtype=np.float64)
    cdef int64_t[::1] ptr = ptr_arr
    cdef int64_t[::1] tok = tok_arr
    cdef double[::1] val = val_arr
    cdef dict names = {}
    cdef list tokens = []
    cdef PyObject *key
    cdef PyObject *value
    cdef PyObject *hit
    cdef _Name rec
    cdef double x, t
    cdef object name, v, cls, onekey
    for i in range(n):
        row = row_list[i]
        t = now[i]
        items = None
        if type(row) is not dict:
            items = iter(row.items())
        pos = 0
        while True:
            if items is None:
                if not PyDict_Next(row, &pos, &key, &value):
                    break
                name = <object>key
                v = <object>value
            else:
                try:
                    name, v = next(items)
                except StopIteration:
                    break
            if m >= cap:
                raise RuntimeError("a mapping changed size while it was read")
            hit = PyDict_GetItem(names, name)
            if hit is NULL:
                rec = _Name(name)
                names[name] = rec
            else:
                rec = <_Name>hit
            cls = type(v)
            if cls is float or cls is int:
                x = float(v)
                if rec.is_ts:
                    x = _age(x, t)
                if x == 0.0:
                    continue  # a numeric zero is left out
                if rec.numeric < 0:
                    rec.numeric = len(tokens)
                    tokens.append((name, numeric_marker))
                tok[m] = rec.numeric
                val[m] = copysign(log1p(fabs(x)), x)
            else:
                # one-hot; str, bool and None never compare equal to one another, any
                # other class is kept apart by its class (True == 1 must not collide)
                onekey = v if (cls is str or cls is bool or v is None) else (cls, v)
                hit = PyDict_GetItem(rec.onehot, onekey)
                if hit is NULL:
                    rec.onehot[onekey] = len(tokens)
                    tok[m] = len(tokens)
                    tokens.append((name, v))
                else:
                    tok[m] = <object>hit
                val[m] = 1.0
            m += 1
        ptr[i + 1] = m
    return ptr_arr, tok_arr[:m].copy(), val_arr[:m].copy(), tokens
