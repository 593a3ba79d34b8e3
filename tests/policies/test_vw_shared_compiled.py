"""The compiled shared-example loop (``policies.vw._shared``) equals its Python twin
(``policies.vw.shared.fill_py``) bit for bit: same hashed indices, same float32 values,
same order, with cold and warm memos, on dicts and on other mappings."""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest

from policies.registry import make_policy
from policies.types import FeatureValue

NOW = 1_780_000_000.0


def test_the_compiled_extension_is_installed_and_used() -> None:
    """An install that lost the extension must fail here, not just run slower."""
    from policies.vw import _shared as _vw_shared
    from policies.vw import shared as vw_shared

    assert vw_shared.fill is _vw_shared.fill
    assert vw_shared.aged_values is _vw_shared.aged_values


def _features(rng: np.random.Generator) -> dict[str, FeatureValue]:
    out: dict[str, FeatureValue] = {
        "segment": str(rng.choice(["a b|c:d", "loyal", "new", "é ü"])),
        "lifetime_value": float(rng.gamma(2.0, 50.0)),
        "refund": float(rng.choice([0.0, -0.0, -12.5, 1e300, -3e-320])),
        "sends_email_7d": int(rng.integers(0, 3)),  # zeros are dropped
        "big": int(rng.choice([-(2**40), 7, 2**53 + 1])),
        "vip": bool(rng.random() < 0.5),
        "flag": int(rng.integers(0, 2)) == 1,
        "tier": None,
        "123": 4.0,
        "last_contact_email_ts": NOW - float(rng.uniform(-1, 9)) * 86_400.0,
        "last_contact_sms_ts": 0.0,
        "last_seen_ts": int(NOW) - int(rng.integers(-100, 3_600)),
        "never_ts": 0,
        "future_ts": NOW + 10.0,  # an age below 0 becomes 0 and is dropped
    }
    for i in range(int(rng.integers(0, 40))):
        out[f"n{i}"] = float(rng.normal()) if i % 3 else int(rng.integers(-3, 4))
    return out


def _both(features: Any, now: float, first: int | None = None) -> None:
    from policies.vw._shared import fill as fill_compiled

    from policies.vw.shared import SharedHasher, fill_py

    policy = make_policy("vw-cb", seed=1)
    hashers = [SharedHasher(policy._core, policy._vw) for _ in range(2)]
    for _ in range(2):  # cold memos, then warm
        for ns in ("c", "r"):
            n1, i1, v1 = fill_py(hashers[0], ns, features, now, first)
            n2, i2, v2 = fill_compiled(hashers[1], ns, features, now, first)
            assert n1 == n2 == len(i1) == len(i2) == len(v1) == len(v2)
            assert i1.dtype == i2.dtype == np.uint64 and v1.dtype == v2.dtype == np.float32
            assert i1.tobytes() == i2.tobytes()
            assert v1.tobytes() == v2.tobytes()


@pytest.mark.parametrize("seed", range(8))
def test_compiled_fill_equals_the_python_twin_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    features = _features(rng)
    for now in (NOW, NOW + 12_345.678, 0.0):  # 0: ages of an unknown ``now``
        _both(features, now)
        _both(features, now, first=12_345)
        _both(MappingProxyType(features), now)  # a mapping that is not a dict


def test_compiled_fill_handles_empty_and_nan() -> None:
    _both({}, NOW)
    _both({}, NOW, first=3)
    _both({"x": math.nan, "y_ts": math.nan, "z": math.inf}, NOW)


def test_shared_examples_are_the_same_with_either_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole examples (both namespaces, the decision point) built through each twin."""
    from policies.vw._shared import fill as fill_compiled

    from policies.types import Context
    from policies.vw import shared as vw_shared

    def groups(fill: Any) -> list[tuple[list[int], list[float]]]:
        monkeypatch.setattr(vw_shared, "fill", fill)
        policy = make_policy("vw-cb", seed=2)
        rng = np.random.default_rng(9)
        out = []
        for point in ("default", "cart_abandoned", "default"):
            request = {"page": "cart", "cart_value": float(rng.uniform(0, 90)), "local_hour": 3}
            ctx = Context("c-1", _features(rng), request, point, NOW)
            ex = policy._hasher.example(ctx)
            out += [(list(g.indices), list(g.values)) for g in ex]
        return out

    assert groups(vw_shared.fill_py) == groups(fill_compiled)


def test_compiled_ages_equal_the_python_twin() -> None:
    """The per-decision ages of a read-only record's ``*_ts`` features (compiled
    ``aged_values``) equal the twin's bit for bit, including a 0 age (``None``: VW drops
    zeros, the caller builds the long way) and never/future timestamps."""
    from policies.vw import _shared as _vw_shared
    from policies.vw import shared as vw_shared

    assert vw_shared.aged_values is _vw_shared.aged_values
    rng = np.random.default_rng(3)
    compared = 0
    for _ in range(300):
        n = int(rng.integers(0, 9))
        template = rng.normal(size=n + 3).astype(np.float32)
        positions = rng.permutation(n + 3)[:n].astype(np.intp)
        epochs = NOW - rng.uniform(-2, 400, n) * 86_400.0
        epochs[rng.random(n) < 0.2] = 0.0  # never
        now = NOW if rng.random() < 0.9 else 0.0  # unknown now: every age is -1
        got = _vw_shared.aged_values(template, positions, epochs, now)
        want = vw_shared.aged_values_py(template, positions, epochs, now)
        assert (got is None) == (want is None)  # a future epoch is an age of 0
        if got is not None:
            assert got.dtype == want.dtype == np.float32
            assert got.tobytes() == want.tobytes() and got is not template
            compared += 1
    assert compared > 150
    zero = np.array([NOW], np.float64)  # an age of exactly 0
    pos = np.array([0], np.intp)
    t = np.zeros(1, np.float32)
    assert _vw_shared.aged_values(t, pos, zero, NOW) is None
    assert vw_shared.aged_values_py(t, pos, zero, NOW) is None
