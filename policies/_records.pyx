# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled twin of :func:`policies.types.trusted_py`: a frozen, slotted record built
without its dataclass ``__init__``, each field set as ``object.__setattr__`` sets it
(``PyObject_GenericSetAttr``: the slot's descriptor). For hot loops that build records
from values already checked; ``tests/policies/test_records_compiled.py`` checks the
records equal those ``__init__`` builds.
"""

from cpython.object cimport PyObject_GenericSetAttr

cdef object _new = object.__new__


def trusted(type cls, tuple names, tuple values):
    """An instance of ``cls`` with ``names[i]`` set to ``values[i]`` (every field)."""
    cdef Py_ssize_t i, n = len(names)
    if len(values) != n:
        raise ValueError(f"{cls.__name__}: {n} field names, {len(values)} values")
    obj = _new(cls)
    for i in range(n):
        PyObject_GenericSetAttr(obj, names[i], values[i])
    return obj
