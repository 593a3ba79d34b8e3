# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of :func:`training.logs.reader.join_rows_py`: the training join's loop
over logged decision rows, with :meth:`training.logs.reader.RowParser.parse` inlined.

Same checks in the same order, so every bad row is skipped and counted under the same
reason; the memo tables are the parser's own (misses are filled by its methods); the
customer JSON is checked by :func:`training._columns.flat_object` and kept as a
:class:`~training.logs.reader.LoggedFeatures` (decoded on first use; a text the
checker does not take is decoded by the parser's orjson, as in the twin); contexts are built as
:meth:`policies.types.Context.trusted` builds them. ``tests/training/test_join_compiled.py``
checks both give the same rows, contexts (equal feature mappings), pmfs and counts.
"""

from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject, PyObject_GenericSetAttr

from policies.types import Context

from training._columns import flat_object
from training.logs.reader import PMF_TOLERANCE, LoggedFeatures, _scalars_only

cdef double _TOL = PMF_TOLERANCE


def join_rows(
    parser,
    columns,
    dict reward_of,
    deadlines,
    double now,
    default_reward,
    counts,
):
    """See :func:`training.logs.reader.join_rows_py` (same arguments, same result)."""
    cdef list event_ids, cids, dps, ts, cfs, rcs, acts_col, pmf_col, aids, ps
    event_ids, cids, dps, ts, cfs, rcs, acts_col, pmf_col, aids, ps = [list(c) for c in columns]
    cdef Py_ssize_t n = len(event_ids), i, index
    for col in (cids, dps, ts, cfs, rcs, acts_col, pmf_col, aids, ps):
        if len(col) != n:
            raise ValueError("columns have different lengths")
    cdef list dl = None if deadlines is None else list(deadlines)
    if dl is not None and len(dl) != n:
        raise ValueError("deadlines and columns have different lengths")
    loads = parser._loads
    cdef dict requests = parser._requests
    cdef dict pmf_memo = parser._pmfs
    cdef dict action_memo = parser._actions
    skipped = counts.skipped
    cdef dict defaults = {}
    cdef list contexts = [], action_lists = [], chosen = [], probs = [], rewards_out = []
    cdef list pmfs = [], keep = []
    cdef Py_ssize_t rewarded = 0, defaulted = 0, pending = 0
    cdef double p, total
    cdef PyObject *hit
    cdef object reason, aid, customer, cf, rc, request, logged, decoded, text, reward
    cdef bint flat
    cdef object actions, ids, pmf, values, ctx, event_id, point
    new = object.__new__
    for i in range(n):
        reason = None
        aid = aids[i]
        if not isinstance(aid, str):
            skipped["no_action"] += 1
            continue
        try:
            p = float(ps[i])
        except (TypeError, ValueError):
            skipped["bad_probability"] += 1
            continue
        if not (0.0 < p <= 1.0):  # False for NaN
            skipped["bad_probability"] += 1
            continue
        cf = cfs[i]
        flat = type(cf) is str and flat_object(cf)
        if flat:  # checked without decoding: decoded on first use, if ever
            customer = LoggedFeatures(cf)
        else:
            try:
                customer = loads(cf)
            except (TypeError, ValueError):
                skipped["corrupt_json"] += 1
                continue
        rc = rcs[i]
        hit = PyDict_GetItem(requests, rc) if type(rc) is str else NULL
        request = <object>hit if hit is not NULL else parser._decode_request(rc)
        text = pmf_col[i]
        hit = PyDict_GetItem(pmf_memo, text) if type(text) is str else NULL
        logged = <object>hit if hit is not NULL else parser._decode_pmf(text)
        if request is None or logged is None:
            skipped["corrupt_json"] += 1
            continue
        if not flat:
            if type(customer) is not dict:
                skipped["corrupt_json"] += 1
                continue
            # a text with one '{' and no '[' holds no nested object or list
            if not (type(cf) is str and "[" not in cf and cf.count("{") == 1):
                if not _scalars_only(customer):
                    skipped["corrupt_json"] += 1
                    continue
        text = acts_col[i]
        hit = PyDict_GetItem(action_memo, text) if type(text) is str else NULL
        decoded = <object>hit if hit is not NULL else parser._decode_actions(text)
        if type(decoded) is str:
            skipped[decoded] += 1
            continue
        actions, ids = decoded
        pmf, values, total = logged
        if len(values) != len(ids) or aid not in ids:
            skipped["ranking_mismatch"] += 1
            continue
        index = ids.index(aid)
        if abs(total - 1.0) > _TOL or abs(<double>values[index] - p) > _TOL:
            skipped["ranking_mismatch"] += 1
            continue
        ctx = new(Context)  # Context.trusted: set the frozen fields directly
        PyObject_GenericSetAttr(ctx, "customer_id", str(cids[i]))
        PyObject_GenericSetAttr(ctx, "customer", customer)
        PyObject_GenericSetAttr(ctx, "request", request)
        point = str(dps[i])
        PyObject_GenericSetAttr(ctx, "decision_point", point)
        PyObject_GenericSetAttr(ctx, "timestamp", float(ts[i]))
        event_id = event_ids[i]
        if event_id in reward_of:
            reward = reward_of[event_id]
            rewarded += 1
        elif dl is not None and dl[i] > now:
            pending += 1
            continue
        else:
            hit = PyDict_GetItem(defaults, point)
            if hit is NULL:
                reward = defaults[point] = default_reward(point)
            else:
                reward = <object>hit
            defaulted += 1
        contexts.append(ctx)
        action_lists.append(actions)
        chosen.append(index)
        probs.append(p)
        rewards_out.append(reward)
        pmfs.append(pmf)
        keep.append(i)
    counts.rewarded += rewarded
    counts.defaulted += defaulted
    counts.pending += pending
    return contexts, action_lists, chosen, probs, rewards_out, pmfs, keep
