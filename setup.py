"""Build hook for Maestro's compiled hot loops.

Everything is declared in pyproject.toml; this file only adds the Cython
extensions: every ``_*.pyx`` under the packages is compiled.  Each compiled module has a
pure-Python twin with the same results (tests compare them), so a machine
without a compiler still runs Maestro, only slower.
"""

from pathlib import Path

from setuptools import setup

PACKAGES = ("core", "policies", "features", "serving", "training", "simulator")


def _extensions() -> list:
    sources = sorted(str(p) for pkg in PACKAGES for p in Path(pkg).rglob("_*.pyx"))
    if not sources:
        return []
    from Cython.Build import cythonize

    return cythonize(
        sources,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
        quiet=True,
    )


setup(ext_modules=_extensions())
