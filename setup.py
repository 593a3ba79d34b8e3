"""Build hook for Maestro's compiled hot loops.

Everything is declared in pyproject.toml; this file only adds the Cython
extensions: every ``_*.pyx`` under the packages (sub-packages included) is compiled.
Each compiled module has a pure-Python twin with the same results (tests compare
them; ``core.compiled`` picks one), so every extension is optional: where one does
not compile (no C compiler), the build warns and goes on, and Maestro runs on the
twins, only slower.

The C code is compiled without floating-point contraction (``-ffp-contract=off``):
a compiler allowed to fuse ``a * b + c`` into one FMA instruction rounds once where
the twin's Python floats round twice, and the twins promise the same bits.
"""

import sys
from pathlib import Path

from setuptools import setup

PACKAGES = ("core", "policies", "features", "serving", "training", "simulator")
#: no fused multiply-add where the Python twin rounds each operation (GCC and Clang)
FP_FLAGS = [] if sys.platform == "win32" else ["-ffp-contract=off"]


def _extensions() -> list:
    sources = sorted(str(p) for pkg in PACKAGES for p in Path(pkg).rglob("_*.pyx"))
    if not sources:
        return []
    from Cython.Build import cythonize

    extensions = cythonize(
        sources,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
        quiet=True,
    )
    for ext in extensions:
        ext.optional = True  # a failed compile warns; the install goes on with the twin
        ext.extra_compile_args = [*ext.extra_compile_args, *FP_FLAGS]
    return extensions


setup(ext_modules=_extensions())
