# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of :func:`policies.vw.shared.fill_py`: one namespace of a VW shared
example, as (hashed index, value) arrays, from a feature mapping.

Same tokens, same order, same memo tables (the :class:`~policies.vw.shared.SharedHasher`'s
own dicts, misses filled by its methods), same arithmetic: ``sign·log1p`` and ages in
days computed in C doubles (the C library's ``log1p``, which Python's ``math.log1p``
calls too) and rounded to float32 as NumPy rounds the twin's list of Python floats.
``tests/policies/test_vw_shared_compiled.py`` checks both give the same bits.

Reference: Weinberger et al., *Feature Hashing for Large Scale Multitask Learning*,
ICML 2009.
"""

from cpython.buffer cimport PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.dict cimport PyDict_GetItem, PyDict_Next
from cpython.object cimport PyObject
from libc.math cimport copysign, fabs, log1p
from libc.stdint cimport uint64_t

import numpy as np

cdef double _DAY = 86_400.0
_U64, _F32 = np.uint64, np.float32


cdef inline double _age(double ts, double now) noexcept:
    """``policies.featurize.age_days``."""
    if ts <= 0.0 or now <= 0.0:
        return -1.0
    cdef double d = (now - ts) / _DAY
    return d if d > 0.0 else 0.0


cdef inline double _numeric(double x) noexcept:
    """``policies.featurize.numeric_value``."""
    return copysign(log1p(fabs(x)), x)


cdef inline bint _is_ts(str name):
    return name.endswith("_ts")


def fill(object hasher, str ns, object features, double now, object first=None):
    """``(n, indices, values)`` of namespace ``ns`` for ``features`` at ``now``: uint64
    and float32 arrays of length ``n`` (``first``, when given, is a leading index with
    value 1, the request namespace's decision point). See ``fill_py``."""
    cdef dict numeric = hasher._numeric[ns]
    cdef dict ints = hasher._ints[ns]
    cdef dict onehot = hasher._onehot[ns]
    cdef Py_ssize_t cap = len(features) + (0 if first is None else 1)
    idx_arr = np.empty(cap, _U64)
    val_arr = np.empty(cap, _F32)
    if cap == 0:
        return 0, idx_arr, val_arr
    cdef Py_buffer ibuf, vbuf
    cdef Py_ssize_t n
    PyObject_GetBuffer(idx_arr, &ibuf, PyBUF_WRITABLE)
    try:
        PyObject_GetBuffer(val_arr, &vbuf, PyBUF_WRITABLE)
        try:
            n = _fill(hasher, ns, numeric, ints, onehot, features, now, first,
                      <uint64_t*>ibuf.buf, <float*>vbuf.buf, cap)
        finally:
            PyBuffer_Release(&vbuf)
    finally:
        PyBuffer_Release(&ibuf)
    return n, idx_arr[:n], val_arr[:n]


cdef inline PyObject* _get2(dict table, object name, object value):
    """``table[name][value]`` (borrowed), or NULL."""
    cdef PyObject* inner = PyDict_GetItem(table, name)
    if inner is NULL:
        return NULL
    return PyDict_GetItem(<dict>inner, value)


cdef Py_ssize_t _fill(object hasher, str ns, dict numeric, dict ints, dict onehot,
                      object features, double now, object first,
                      uint64_t* idx, float* val, Py_ssize_t cap) except -1:
    cdef object age_marker = hasher._AGE
    cdef Py_ssize_t n = 0
    cdef Py_ssize_t pos = 0
    cdef PyObject* kp
    cdef PyObject* vp
    cdef PyObject* hp
    cdef object name, value, meta, hit
    cdef double x
    if first is not None:
        idx[0] = <uint64_t>first
        val[0] = 1.0
        n = 1
    items = None if type(features) is dict else iter(features.items())
    while True:
        if items is None:
            if not PyDict_Next(features, &pos, &kp, &vp):
                break
            name = <object>kp
            value = <object>vp
        else:
            try:
                name, value = next(items)
            except StopIteration:
                break
        if n == cap:  # a mapping with more items than its len()
            raise ValueError("features: more items than len() says")
        if type(value) is float:
            hp = PyDict_GetItem(numeric, name)
            meta = hasher._meta(ns, name) if hp is NULL else <object>hp
            x = <double>value
            if meta[1]:
                x = _age(x, now)
            if x != 0.0:  # NaN included, as Python's truth test
                idx[n] = <uint64_t>meta[0]
                val[n] = <float>_numeric(x)
                n += 1
        elif type(value) is int:
            if not value and not _is_ts(name):
                continue  # zero: VW drops it
            hp = _get2(ints, name, value)
            hit = hasher._int(ns, name, value) if hp is NULL else <object>hp
            if hit is age_marker:  # an integer epoch: its age changes with ``now``
                x = _age(<double>float(value), now)
                if x != 0.0:
                    hp = PyDict_GetItem(numeric, name)
                    meta = hasher._meta(ns, name) if hp is NULL else <object>hp
                    idx[n] = <uint64_t>meta[0]
                    val[n] = <float>_numeric(x)
                    n += 1
                continue
            idx[n] = <uint64_t>hit[0]
            val[n] = <float><double>hit[1]
            n += 1
        else:  # str, bool or None: one-hot
            hp = _get2(onehot, name, value)
            idx[n] = <uint64_t>(hasher._onehot_index(ns, name, value) if hp is NULL else <object>hp)
            val[n] = 1.0
            n += 1
    return n


def aged_values(object template, const Py_ssize_t[:] positions, const double[:] epochs,
                double now):
    """A copy of a customer template (float32 values) with the ages at ``now`` of its
    ``*_ts`` features written at ``positions`` (``epochs``: their raw values), or
    ``None`` when an age is exactly 0 (VW drops a 0 value: the caller builds the long
    way). The compiled twin of :func:`policies.vw.shared.aged_values_py`."""
    val = template.copy()
    cdef float[:] v = val
    cdef Py_ssize_t i
    cdef double x
    for i in range(positions.shape[0]):
        x = _age(epochs[i], now)
        if x == 0.0:
            return None
        v[positions[i]] = <float>_numeric(x)
    return val
