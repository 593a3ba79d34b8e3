# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled twins of :mod:`policies.routing`'s per-agent loops: :func:`case_reason` of
``case_reason_py`` (may this agent take the case?) and :func:`sent_agents` of
``sent_agents_py`` (the caller's agents as actions, ``continuity`` set). They run for
every agent of every ``agent_routing`` request; ``tests/routing/test_routing_compiled.py``
checks they give what their twins give.
"""

from functools import lru_cache

from cpython.object cimport PyObject_GenericSetAttr

from policies.types import Action

cdef object _new = object.__new__
cdef object _ACTION = Action
cdef frozenset _NO_NAMES = frozenset()


@lru_cache(maxsize=4096)
def _names(str value):
    return frozenset(part.strip().lower() for part in value.split(",") if part.strip())


cdef double _number(object value) except? -1.0:  # twin of routing.as_number
    cdef type kind = type(value)
    if kind is int or kind is float or kind is bool:
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return 0.0
    return 0.0


def case_reason(object skill, double level, object language, bint retention_only, features):
    """``skill``, ``language``, ``capacity`` or ``retention_only`` when the agent with
    these action features may not take the case, else ``None``."""
    raw = features.get("skills")
    cdef frozenset skills = _names(raw) if isinstance(raw, str) else _NO_NAMES
    if skill is not None and skill not in skills:
        return "skill"
    if _number(features.get("level")) < level:
        return "skill"
    if language is not None:
        raw = features.get("languages")
        if not isinstance(raw, str) or language not in _names(raw):
            return "language"
    if _number(features.get("load")) >= _number(features.get("capacity")):
        return "capacity"
    if retention_only and "retention" not in skills:
        return "retention_only"
    return None


def sent_agents(sent, last):
    """The caller's actions as :class:`Action` s, ``continuity`` set on agents."""
    cdef list out = []
    cdef dict features
    for action in sent:
        action_id, channel = action.id, action.channel
        features = dict(action.features)
        if channel == "agent":
            features["continuity"] = 1 if action_id == last else 0
        built = _new(_ACTION)
        PyObject_GenericSetAttr(built, "id", action_id)
        PyObject_GenericSetAttr(built, "channel", channel)
        PyObject_GenericSetAttr(built, "features", features)
        out.append(built)
    return out
