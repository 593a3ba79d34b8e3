# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of :func:`policies.draw.finish_py`: the seeded draw, the ranking and
the :class:`~policies.types.Decision` of one decision, from its final pmf.

Same results as the twin, bit for bit: the uniform number is the same SplitMix64 step
(Steele, Lea & Flood, *Fast Splittable Pseudorandom Number Generators*, OOPSLA 2014)
in unsigned 64-bit arithmetic, the pmf total is Python's own ``math.fsum``, the
inverse-CDF walk adds the same doubles in the same order, and the ranking is the
stable descending order ``sorted(..., reverse=True)`` gives (ties keep their order).
The records are built without their dataclass ``__init__`` (fields set through the
slots, as ``object.__setattr__`` would); ``tests/policies/test_decide_compiled.py``
checks they equal the twin's.
"""

from cpython.object cimport PyObject_GenericSetAttr
from libc.stdint cimport uint64_t

import math

from policies.types import Decision, RankedAction

cdef object _fsum = math.fsum
cdef object _new = object.__new__
cdef object _Decision = Decision
cdef object _Ranked = RankedAction
cdef int _MAX = 64  # actions ranked on the stack; more fall back to Python's sort


cdef inline double _uniform(uint64_t seed) noexcept:
    """``policies.draw.uniform_from_seed``."""
    cdef uint64_t z = seed + <uint64_t>0x9E3779B97F4A7C15
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EB
    z ^= z >> 31
    return <double>(z >> 11) * (1.0 / 9007199254740992.0)


cdef object _ranked(object action_id, object probability):
    r = _new(_Ranked)
    PyObject_GenericSetAttr(r, "action_id", action_id)
    PyObject_GenericSetAttr(r, "probability", probability)
    return r


def finish(list probs, object actions, object seed, object event_id, tuple excluded,
           object kind, object version):
    """The :class:`Decision` drawing from ``probs`` (the final pmf over ``actions``, one
    Python float each) with ``seed``'s uniform number. See ``policies.draw.finish_py``."""
    cdef Py_ssize_t n = len(probs), i, j, index = -1, k
    cdef double u = _uniform(<uint64_t>(seed & 0xFFFFFFFFFFFFFFFF)) * <double>_fsum(probs)
    cdef double acc = 0.0, p, q
    cdef Py_ssize_t order_buf[64]
    for i in range(n):  # ``policies.draw.draw``
        p = <double>probs[i]
        if p <= 0.0:
            continue
        acc += p
        index = i
        if u < acc:
            break
    if index < 0:  # no positive entry: the twin's index -1, the last one
        index = n - 1
    if n > _MAX:
        order = sorted(range(n), key=probs.__getitem__, reverse=True)
        ranking = tuple([_ranked(actions[k].id, probs[k]) for k in order])
        top = <Py_ssize_t>order[0]
    else:
        for i in range(n):  # stable insertion: after every earlier one at least as likely
            p = <double>probs[i]
            j = i
            while j > 0:
                q = <double>probs[order_buf[j - 1]]
                if q >= p:
                    break
                order_buf[j] = order_buf[j - 1]
                j -= 1
            order_buf[j] = i
        ranking = tuple([_ranked(actions[order_buf[k]].id, probs[order_buf[k]]) for k in range(n)])
        top = order_buf[0] if n else 0
    d = _new(_Decision)
    chosen = probs[index]
    PyObject_GenericSetAttr(d, "event_id", event_id)
    PyObject_GenericSetAttr(d, "action", actions[index])
    PyObject_GenericSetAttr(d, "probability", chosen)
    PyObject_GenericSetAttr(d, "ranking", ranking)
    PyObject_GenericSetAttr(d, "excluded", excluded)
    PyObject_GenericSetAttr(d, "policy", kind)
    PyObject_GenericSetAttr(d, "policy_version", version)
    PyObject_GenericSetAttr(d, "explored", <double>chosen < <double>probs[top])
    return d
