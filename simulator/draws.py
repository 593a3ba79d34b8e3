"""Scalar random draws for the simulator's hot loop, from a NumPy ``Generator``.

:class:`NumpyDraws` calls the generator's methods; ``simulator._draws.Draws``
(compiled) draws the same numbers from the same bit generator without NumPy's
per-call overhead (see its docstring; ``tests/simulator/test_sim_draws.py`` checks the
streams are identical). Its one transcendental function, the Poisson method's
``exp(-lam)``, is the C library's ``exp``, which NumPy's C distributions call too.
:data:`Draws` is the compiled one when it is built.
"""

from __future__ import annotations

import numpy as np

from core.compiled import compiled_or


class NumpyDraws:
    """Scalar draws through ``generator``'s own methods (the pure-Python twin)."""

    def __init__(self, generator: np.random.Generator) -> None:
        self.generator = generator

    def random(self) -> float:
        return float(self.generator.random())

    def integers(self, low: int, high: int | None = None) -> int:
        return int(self.generator.integers(low, high))

    def poisson(self, lam: float) -> int:
        return int(self.generator.poisson(lam))

    def lognormal(self, mean: float, sigma: float) -> float:
        return float(self.generator.lognormal(mean, sigma))


#: the compiled draws (``simulator._draws.Draws``) when built, else :class:`NumpyDraws`
Draws: type = compiled_or("simulator._draws", "Draws", NumpyDraws)
