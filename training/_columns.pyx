# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled token streams: :func:`training.columns.token_stream_py` in one pass over
the rows instead of one numpy column per feature, and straight from the logged JSON
text of a :class:`training.logs.reader.LoggedFeatures` that nothing has decoded yet.

Same tokens, in the same order (row by row, within a row the mapping's own order),
same arithmetic: ``sign·log1p`` and ``*_ts`` ages in days in C doubles, with the C
library's ``log1p``, which the twin calls through ``math.log1p`` (not NumPy's
``log1p``: its SIMD loops may differ from the C library in the last bit). Only the
numbering of the token table differs (first appearance here, column by column in the
twin); ``tests/training/test_compiled.py`` compares the entries' tokens and values bit
for bit.

The JSON reader takes only a strict, simple subset: an ASCII object of scalars with
no escapes in its strings, integers of at most 18 digits, finite floats (read by the C
library's correctly rounded ``strtod``, as orjson reads them correctly rounded), no
duplicate keys. Anything else — a text that is corrupt, nested, escaped, non-ASCII or
just unusual — is not read here: the caller decodes it with orjson, the reference.

Reference: Weinberger et al., *Feature Hashing for Large Scale Multitask Learning*,
ICML 2009.
"""

from cpython.dict cimport PyDict_GetItem, PyDict_Next
from cpython.object cimport PyObject
from cpython.unicode cimport PyUnicode_DATA, PyUnicode_GET_LENGTH
from libc.math cimport copysign, fabs, log1p
from libc.stdint cimport int64_t
from libc.string cimport memcmp

from training._flatjson cimport (
    _BAD,
    _FALSE,
    _NULL,
    _NUMBER,
    _STRING,
    _TRUE,
    _Read,
    _string,
    _value,
    _ws,
)

import numpy as np

cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object o)

cdef double _DAY = 86_400.0


cdef class _Name:
    """Per feature name: its numeric token (``-1`` until seen), whether it is a
    ``*_ts`` timestamp, its one-hot tokens by value, and the last string value read
    from JSON text (reused when the next row has the same)."""

    cdef Py_ssize_t numeric
    cdef bint is_ts
    cdef dict onehot
    cdef str last

    def __cinit__(self, str name):
        self.numeric = -1
        self.is_ts = name.endswith("_ts")
        self.onehot = {}
        self.last = None


cdef inline double _age(double ts, double now) noexcept:
    """``policies.featurize.age_days``."""
    if ts <= 0.0 or now <= 0.0:
        return -1.0
    cdef double d = (now - ts) / _DAY
    return d if d > 0.0 else 0.0


def flat_object(str text):
    """True when ``text`` is a JSON object of scalars that this reader takes (see the
    module docstring): orjson decodes it to a ``dict`` of ``str``, ``int``, ``float``,
    ``bool`` and ``None``. False means: ask orjson."""
    if not PyUnicode_IS_ASCII(text):
        return False
    cdef const char *s = <const char *>PyUnicode_DATA(text)
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text), i, j
    cdef _Read r
    i = _ws(s, 0, n)
    if i >= n or s[i] != 123:  # '{'
        return False
    i = _ws(s, i + 1, n)
    if i < n and s[i] == 125:  # '}'
        return _ws(s, i + 1, n) == n
    while True:
        if i >= n or s[i] != 34:
            return False
        j = _string(s, i, n)
        if j < 0:
            return False
        i = _ws(s, j + 1, n)
        if i >= n or s[i] != 58:  # ':'
            return False
        r = _value(s, _ws(s, i + 1, n), n, True)
        if r.kind == _BAD:
            return False
        i = _ws(s, r.end, n)
        if i < n and s[i] == 44:  # ','
            i = _ws(s, i + 1, n)
            continue
        if i < n and s[i] == 125:
            return _ws(s, i + 1, n) == n
        return False


cdef class _Stream:
    """The token table and the growing entry arrays of one :func:`token_stream`."""

    cdef dict names
    cdef list tokens
    cdef object marker
    cdef object tok_arr, val_arr
    cdef int64_t[::1] tok
    cdef double[::1] val
    cdef Py_ssize_t m, cap
    # the key layout of the last JSON text read: its names and their records, and how
    # long a prefix of it is known to hold no duplicate
    cdef list keys, recs
    cdef Py_ssize_t distinct

    def __cinit__(self, object marker, Py_ssize_t cap):
        self.names = {}
        self.tokens = []
        self.marker = marker
        self.m = 0
        self.cap = max(cap, 16)
        self.tok_arr = np.empty(self.cap, dtype=np.int64)
        self.val_arr = np.empty(self.cap, dtype=np.float64)
        self.tok = self.tok_arr
        self.val = self.val_arr
        self.keys = []
        self.recs = []
        self.distinct = 0

    cdef int reserve(self, Py_ssize_t more) except -1:
        if self.m + more <= self.cap:
            return 0
        cap = max(2 * self.cap, self.m + more)
        tok_arr = np.empty(cap, dtype=np.int64)
        val_arr = np.empty(cap, dtype=np.float64)
        tok_arr[: self.m] = self.tok_arr[: self.m]
        val_arr[: self.m] = self.val_arr[: self.m]
        self.tok_arr, self.val_arr, self.cap = tok_arr, val_arr, cap
        self.tok = tok_arr
        self.val = val_arr
        return 0

    cdef _Name name(self, object name):
        cdef PyObject *hit = PyDict_GetItem(self.names, name)
        if hit is not NULL:
            return <_Name>hit
        rec = _Name(name)
        self.names[name] = rec
        return rec

    cdef inline void number(self, _Name rec, object name, double x, double t):
        if rec.is_ts:
            x = _age(x, t)
        if x == 0.0:
            return  # a numeric zero is left out
        if rec.numeric < 0:
            rec.numeric = len(self.tokens)
            self.tokens.append((name, self.marker))
        self.tok[self.m] = rec.numeric
        self.val[self.m] = copysign(log1p(fabs(x)), x)
        self.m += 1

    cdef inline int onehot(self, _Name rec, object name, object v) except -1:
        # str, bool and None never compare equal to one another; any other class is
        # kept apart by its class (True == 1 must not collide)
        cls = type(v)
        key = v if (cls is str or cls is bool or v is None) else (cls, v)
        cdef PyObject *hit = PyDict_GetItem(rec.onehot, key)
        if hit is NULL:
            rec.onehot[key] = len(self.tokens)
            self.tok[self.m] = len(self.tokens)
            self.tokens.append((name, v))
        else:
            self.tok[self.m] = <object>hit
        self.val[self.m] = 1.0
        self.m += 1
        return 0

    cdef int mapping(self, object row, double t) except -1:
        cdef Py_ssize_t pos = 0
        cdef PyObject *key
        cdef PyObject *value
        self.reserve(len(row))
        if type(row) is dict:
            while PyDict_Next(row, &pos, &key, &value):
                self.entry(<object>key, <object>value, t)
        else:
            for name, v in row.items():
                self.entry(name, v, t)
        return 0

    cdef inline int entry(self, object name, object v, double t) except -1:
        if self.m >= self.cap:
            raise RuntimeError("a mapping changed size while it was read")
        rec = self.name(name)
        cls = type(v)
        if cls is float or cls is int:
            self.number(rec, name, float(v), t)
        else:
            self.onehot(rec, name, v)
        return 0

    cdef bint text(self, str text, double t) except -1:
        """Append the entries of JSON ``text`` read directly; False (nothing appended)
        when the reader does not take it."""
        if not PyUnicode_IS_ASCII(text):
            return False
        cdef const char *s = <const char *>PyUnicode_DATA(text)
        cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text), i, j, k = 0, start = self.m
        cdef _Read r
        cdef _Name rec
        cdef str key, last
        self.reserve(n // 4 + 1)  # an entry takes at least 4 characters ("a":1,)
        i = _ws(s, 0, n)
        if i >= n or s[i] != 123:
            return False
        i = _ws(s, i + 1, n)
        if i < n and s[i] == 125:
            return _ws(s, i + 1, n) == n
        while True:
            if i >= n or s[i] != 34:
                break
            j = _string(s, i, n)
            if j < 0:
                break
            # the key: the last layout's name at this position when the text matches
            if k < len(self.keys):
                key = <str>self.keys[k]
                if not (
                    PyUnicode_GET_LENGTH(key) == j - i - 1
                    and memcmp(PyUnicode_DATA(key), s + i + 1, j - i - 1) == 0
                ):
                    key = text[i + 1 : j]
                    self.keys[k] = key
                    self.recs[k] = self.name(key)
                    self.distinct = min(self.distinct, k)
            else:
                key = text[i + 1 : j]
                self.keys.append(key)
                self.recs.append(self.name(key))
            rec = <_Name>self.recs[k]
            k += 1
            i = _ws(s, j + 1, n)
            if i >= n or s[i] != 58:
                break
            r = _value(s, _ws(s, i + 1, n), n, False)
            if r.kind == _NUMBER:
                self.number(rec, key, r.x, t)
            elif r.kind == _STRING:
                last = rec.last
                if not (
                    last is not None
                    and PyUnicode_GET_LENGTH(last) == r.end - 1 - r.start
                    and memcmp(PyUnicode_DATA(last), s + r.start, r.end - 1 - r.start) == 0
                ):
                    last = rec.last = text[r.start : r.end - 1]
                self.onehot(rec, key, last)
            elif r.kind == _TRUE:
                self.onehot(rec, key, True)
            elif r.kind == _FALSE:
                self.onehot(rec, key, False)
            elif r.kind == _NULL:
                self.onehot(rec, key, None)
            else:
                break
            i = _ws(s, r.end, n)
            if i < n and s[i] == 44:
                i = _ws(s, i + 1, n)
                continue
            if i < n and s[i] == 125 and _ws(s, i + 1, n) == n:
                if k > self.distinct:  # a duplicate key: orjson keeps the last value
                    if len(set(self.keys[:k])) != k:
                        break
                    self.distinct = k
                return True
            break
        self.m = start  # not taken: forget what this row appended
        return False


def token_stream(rows, double[::1] now, object numeric_marker, object lazy_type):
    """``(ptr, tok, val, tokens)`` of the feature mappings ``rows`` observed at ``now``;
    see :class:`training.columns.TokenStream`. ``numeric_marker`` is the value of a
    numeric token in ``tokens``; a row of class ``lazy_type`` (a
    :class:`~training.logs.reader.LoggedFeatures`) not decoded yet is read from its JSON
    text when this reader takes it, else decoded."""
    cdef Py_ssize_t n = len(rows), i
    if now.shape[0] != n:
        raise ValueError("rows and now have different lengths")
    cdef list row_list = list(rows)
    ptr_arr = np.zeros(n + 1, dtype=np.int64)
    cdef int64_t[::1] ptr = ptr_arr
    cdef _Stream out = _Stream(numeric_marker, 32 * n)
    for i in range(n):
        row = row_list[i]
        if type(row) is lazy_type:
            data = row._data
            if data is None and type(row.text) is str and out.text(row.text, now[i]):
                ptr[i + 1] = out.m
                continue
            row = row._decoded()
        out.mapping(row, now[i])
        ptr[i + 1] = out.m
    return (
        ptr_arr,
        out.tok_arr[: out.m].copy(),
        out.val_arr[: out.m].copy(),
        out.tokens,
    )
