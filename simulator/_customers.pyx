# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of :func:`simulator.customers.refresh_py`: a customer's engagement
counters at ``now`` from their contact history, recomputed only for the channels
where a contact was added or left a window since the last refresh.

Same integers, the same doubles added in the same order, Python's ``min``/``max``
argument order and Python's own ``round``: the features it writes equal the twin's
(``tests/simulator/test_sim_compiled.py``).
"""

from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject

cdef double _WEEK = 7 * 86_400.0
cdef double _MONTH = 30 * 86_400.0
cdef double _INF = float("inf")


def refresh(object state, double now, tuple counter_keys, dict zero_counters):
    """Update ``state.features`` (counters, ``churn_risk``), ``state.recent_contacts`` and
    the per-channel memo. See ``refresh_py``."""
    cdef dict feats = state.features
    cdef dict history = state.history
    cdef dict memo = state._memo
    cdef double weighted = 0.0
    cdef double week_start = now - _WEEK, month_start = now - _MONTH
    cdef double expiry, leaves, ts, last, share, risk
    cdef long s7, o7, k7, o30, k30, opened, clicked
    cdef Py_ssize_t size
    cdef PyObject* hp
    cdef tuple seen, keys
    cdef object channel, contacts, c
    for entry in counter_keys:
        channel = (<tuple>entry)[0]
        keys = <tuple>(<tuple>entry)[1]
        hp = PyDict_GetItem(history, channel)
        contacts = None if hp is NULL else <object>hp
        size = len(contacts) if contacts else 0
        hp = PyDict_GetItem(memo, channel)
        if hp is not NULL:
            seen = <tuple>hp
            if seen[0] is contacts and <Py_ssize_t>seen[1] == size and now < <double>seen[2]:
                weighted += <double>seen[3]  # nothing added, nothing expired: counters stand
                continue
        if not contacts:
            feats.update(zero_counters[channel])
            memo[channel] = (contacts, 0, _INF, 0.0)
            continue
        if contacts[0].ts <= month_start:  # oldest first: something expired
            contacts = [x for x in contacts if x.ts > month_start]
            history[channel] = contacts
        s7 = o7 = k7 = o30 = k30 = 0
        last = 0.0
        expiry = _INF
        for c in contacts:
            ts = c.ts
            opened = c.opened
            clicked = c.clicked
            o30 += opened
            k30 += clicked
            if ts > week_start:
                s7 += 1
                o7 += opened
                k7 += clicked
                leaves = ts + _WEEK
            else:
                leaves = ts + _MONTH
            if leaves < expiry:
                expiry = leaves
            if ts > last:
                last = ts
        feats[keys[0]] = s7
        feats[keys[1]] = o7
        feats[keys[2]] = k7
        feats[keys[3]] = len(contacts)
        feats[keys[4]] = o30
        feats[keys[5]] = k30
        if contacts:
            feats[keys[6]] = last
        share = (0.3 if channel == "in_app" else 1.0) * <double>s7
        memo[channel] = (contacts, len(contacts), expiry, share)
        weighted += share
    state.recent_contacts = weighted
    risk = <double>state.base_churn_risk + 0.03 * weighted * <double>state.fatigue_sensitivity
    risk = risk + (0.15 if feats.get("open_complaint") else 0.0)
    if 0.0 > risk:
        risk = 0.0
    if 1.0 < risk:
        risk = 1.0
    feats["churn_risk"] = round(risk, 4)
