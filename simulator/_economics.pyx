# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of :func:`simulator.economics.truth_loop_py`: the exact expected reward
and conversion probability of each candidate action from one customer's static terms.

Same double operations in the same order as the twin (and as
``Economics.conversion_prob``), Python's ``min``/``max`` argument order included, so
the values are the same bits; ``tests/simulator/test_sim_compiled.py`` checks it.
(Saito et al., *Open Bandit Dataset and Pipeline*, 2021: the simulator's ground truth.)
"""

from cpython.buffer cimport PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer

import numpy as np

_F64 = np.float64


def truth_loop(tuple rows, tuple tod, double fatigue, double value, double complaint):
    """``(expected rewards, conversion probabilities)``: a float64 array and a list, one
    entry per row of ``rows`` (contact, base, gain, p0, keep, cost) with its
    time-of-day factor in ``tod``. See ``truth_loop_py``."""
    cdef Py_ssize_t n = len(rows), i
    if len(tod) != n:
        raise ValueError("rows and tod differ in length")
    out = np.empty(n, _F64)
    conv = [None] * n
    cdef Py_buffer buf
    cdef double* o
    cdef tuple row
    cdef double r, p
    PyObject_GetBuffer(out, &buf, PyBUF_WRITABLE)
    try:
        o = <double*>buf.buf
        for i in range(n):
            row = <tuple>rows[i]
            p = <double>row[3]
            if row[0]:
                r = <double>row[1] * <double>tod[i] * fatigue
                if 0.0 > r:
                    r = 0.0
                if 1.0 < r:
                    r = 1.0
                p = p + <double>row[2] * r
                o[i] = p * value * <double>row[4] - <double>row[5] - complaint
            else:
                o[i] = p * value
            conv[i] = p
    finally:
        PyBuffer_Release(&buf)
    return out, conv
