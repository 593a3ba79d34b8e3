"""The compiled scalar draws (``simulator._draws.Draws``) are the NumPy generator's own
stream: same numbers, same types, in any interleaving with the generator's methods."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.draws import NumpyDraws


def test_the_compiled_extension_is_installed_and_used() -> None:
    from simulator import _draws, draws

    assert draws.Draws is _draws.Draws


def _call(ops: np.random.Generator) -> tuple[object, ...]:
    op = int(ops.integers(6))
    if op == 1:
        n = [1, 2, 7, 13, 1000, 2**31, 2**32 - 1, 2**32, 2**32 + 1, 2**40]
        return ("integers", n[int(ops.integers(len(n)))])
    if op == 2:
        return ("integers", int(ops.integers(-5, 5)), int(ops.integers(6, 20)))
    if op == 3:
        lams = [0.0, 0.3, 2.5, 9.99, 10.0, 30.0]
        return ("poisson", lams[int(ops.integers(len(lams)))])
    if op == 4:
        return ("lognormal", 3.0, 0.5)
    return ("random",)


@pytest.mark.parametrize("seed", range(3))
def test_compiled_draws_equal_numpy_generator_draws(seed: int) -> None:
    from simulator._draws import Draws

    fast = Draws(np.random.default_rng([seed, 0]))
    slow = NumpyDraws(np.random.default_rng([seed, 0]))
    ops = np.random.default_rng(seed + 100)
    for _ in range(30_000):
        name, *args = _call(ops)
        a, b = getattr(fast, name)(*args), getattr(slow, name)(*args)  # type: ignore[arg-type]
        assert a == b and type(a) is type(b), (name, args, a, b)
    assert fast.generator.random() == slow.generator.random()  # the streams stay in step


def test_compiled_integers_refuse_what_numpy_refuses() -> None:
    from simulator._draws import Draws

    fast = Draws(np.random.default_rng(1))
    for bad in ((0,), (5, 5), (3, 1)):
        with pytest.raises(ValueError):
            fast.integers(*bad)
    with pytest.raises(ValueError):
        fast.poisson(-1.0)
