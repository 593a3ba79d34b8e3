"""The one import pattern for compiled hot loops: the extension when it is built, else
its pure-Python twin.

A few hot loops are compiled with Cython (``<package>/_<name>.pyx``, built by
``setup.py`` as optional extensions: an install without a compiler warns and goes on).
Each has a twin in plain Python that computes the same values with the same functions
in the same order, so a machine without the extensions runs Maestro with the same
results, only slower. Modules pick one or the other once, at import::

    finish = compiled_or("policies._decide", "finish", finish_py)

Only a missing extension falls back (the module itself, or another compiled module it
imports, is not built): an extension that is built but fails to import for another
reason (a broken build, a missing symbol, a missing library) still raises.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType
from typing import TypeVar

_T = TypeVar("_T")

#: every compiled extension (one per ``_*.pyx`` of the packages; a test keeps the list in
#: step with the sources), for ``maestro doctor`` to say which are not built
EXTENSIONS = (
    "policies._decide",
    "policies._routing",
    "policies.vw._shared",
    "simulator._customers",
    "simulator._draws",
    "simulator._economics",
    "training._columns",
    "training._join",
)


def compiled_module(module: str) -> ModuleType | None:
    """The compiled extension ``module`` (a dotted name such as ``"training._columns"``),
    or ``None`` when it is not built."""
    try:
        return import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or not _is_extension(exc.name):
            raise  # built, but something it needs is missing: not a fallback case
        return None


def _is_extension(module: str) -> bool:
    """True for a compiled module's name: ``<package>._<name>``."""
    package, _, leaf = module.rpartition(".")
    return bool(package) and leaf.startswith("_") and not leaf.startswith("__")


def compiled_or(module: str, name: str, twin: _T) -> _T:
    """Attribute ``name`` of the compiled extension ``module`` when it is built, else
    ``twin`` (its pure-Python twin, same results)."""
    compiled = compiled_module(module)
    return twin if compiled is None else getattr(compiled, name)
