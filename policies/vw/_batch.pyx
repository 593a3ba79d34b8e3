# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twins of :func:`policies.vw.batch.learn_rows_py` and
:func:`policies.vw.batch.pmf_rows_py`: the per-row loops of bulk VW learning and
scoring. Same workspace calls with the same examples in the same order (each row's
shared example from VW's parse of ``"shared |"`` plus two array pushes, the policy's
cached action examples, the chosen one labelled); only the interpreter's overhead is
gone. ``tests/training/test_fast_path.py`` checks the saved model bytes and every pmf
against ``VWPolicy.learn`` / ``VWPolicy.pmf`` and ``tests/training/test_compiled.py``
against the twins.
"""

from libc.stdint cimport int64_t

import numpy as np

cdef int _C = ord("c"), _R = ord("r")


cdef object _shared(
    object parse,
    object core,
    object c_idx,
    object c_val,
    const int64_t[::1] c_ptr,
    object r_idx,
    object r_val,
    const int64_t[::1] r_ptr,
    Py_ssize_t i,
):
    ex = parse(core, "shared |")
    cdef Py_ssize_t s = c_ptr[i], e = c_ptr[i + 1]
    if e > s:
        ex[_C].push_many_features(c_idx[s:e], c_val[s:e])
    s, e = r_ptr[i], r_ptr[i + 1]
    ex[_R].push_many_features(r_idx[s:e], r_val[s:e])
    return ex


def learn_rows(
    object parse,
    object core,
    object learn,
    object labelled,
    object actions_of,
    list actions,
    list chosen,
    list probs,
    list costs,
    object c_idx,
    object c_val,
    const int64_t[::1] c_ptr,
    object r_idx,
    object r_val,
    const int64_t[::1] r_ptr,
    object progress,
    Py_ssize_t chunk,
):
    """See :func:`policies.vw.batch.learn_rows_py`."""
    cdef Py_ssize_t n = len(actions), i, idx
    cdef object acts, last = None, base = None
    cdef list examples
    for i in range(n):
        acts = actions[i]
        if acts is not last:
            base, last = actions_of(acts), acts
        idx = chosen[i]
        examples = [_shared(parse, core, c_idx, c_val, c_ptr, r_idx, r_val, r_ptr, i)]
        examples.extend(base)
        examples[idx + 1] = labelled(acts[idx], costs[i], probs[i])
        learn(examples)
        if progress is not None and (i + 1) % chunk == 0:
            progress(chunk)
    if progress is not None and n % chunk:
        progress(n % chunk)


def pmf_rows(
    object parse,
    object core,
    object predict,
    object actions_of,
    list actions,
    object c_idx,
    object c_val,
    const int64_t[::1] c_ptr,
    object r_idx,
    object r_val,
    const int64_t[::1] r_ptr,
    double floor,
    object apply_floor,
):
    """See :func:`policies.vw.batch.pmf_rows_py`."""
    cdef Py_ssize_t n = len(actions), i
    cdef object acts, last = None, base = None
    cdef list examples, pmf, out = []
    asarray = np.asarray
    for i in range(n):
        acts = actions[i]
        if acts is not last:
            base, last = actions_of(acts), acts
        examples = [_shared(parse, core, c_idx, c_val, c_ptr, r_idx, r_val, r_ptr, i)]
        examples.extend(base)
        pmf = [0.0] * len(acts)
        for index, prob in predict(examples):
            pmf[index] = prob
        out.append(asarray(apply_floor(pmf, floor)))
    return out
