"""The simulator's compiled loops equal their pure-Python twins: the truth of every
candidate (``simulator._economics``) and the engagement counters (``simulator._customers``)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from simulator.customers import _COUNTER_KEYS, _ZERO_COUNTERS, Contact, CustomerState, refresh_py
from simulator.economics import truth_loop_py
from simulator.environment import EnvConfig, JourneyEnvironment
from simulator.run import build_policy, run_policy


def test_the_compiled_extensions_are_installed_and_used() -> None:
    from simulator import _customers, _economics, customers, economics

    assert economics.truth_loop is _economics.truth_loop
    assert customers._refresh is _customers.refresh


@pytest.mark.parametrize("seed", range(4))
def test_compiled_truth_equals_the_python_twin_bit_for_bit(seed: int) -> None:
    from simulator._economics import truth_loop

    rng = np.random.default_rng(seed)
    for n in (1, 2, 5, 12, 40):
        rows = tuple(
            (
                bool(rng.random() < 0.8),
                float(rng.choice([rng.uniform(-0.5, 3.0), 0.0, -0.0, 1.0])),  # clipped at 0, 1
                float(rng.uniform(0, 1)),
                float(rng.uniform(0, 0.5)),
                float(rng.choice([1.0, 0.9, 0.75])),
                float(rng.choice([0.0, 0.05, 1.5])),
            )
            for _ in range(n)
        )
        tod = tuple(float(rng.choice([0.3, 0.5, 1.0, 1.3])) for _ in range(n))
        for fatigue, value, complaint in ((1.0, 8.0, 0.01), (0.2, 0.0, 0.0), (3.0, 10.0, 1.5)):
            a, ca = truth_loop_py(rows, tod, fatigue, value, complaint)
            b, cb = truth_loop(rows, tod, fatigue, value, complaint)
            assert a.dtype == b.dtype == np.float64 and a.tobytes() == b.tobytes()
            assert [x.hex() for x in ca] == [x.hex() for x in cb]
    with pytest.raises(ValueError):
        truth_loop(((True, 1.0, 1.0, 0.1, 1.0, 0.0),), (), 1.0, 1.0, 0.0)


def _state(c: CustomerState) -> tuple[object, ...]:
    memo = {k: (len(v[0] or ()), v[1], v[2], v[3]) for k, v in c._memo.items()}
    history = {k: [(x.ts, x.opened, x.clicked) for x in v] for k, v in c.history.items()}
    feats = {k: (type(v), v) for k, v in c.features.items()}
    return list(c.features), feats, c.recent_contacts.hex(), memo, history


def test_compiled_refresh_equals_the_python_twin() -> None:
    """Same counters, churn risk, memo and pruned history, visit after visit, as contacts
    are added and age out of their windows."""
    from simulator._customers import refresh

    env = JourneyEnvironment(EnvConfig(customers=120))
    run_policy(build_policy("uniform", env.catalog, 0), env, 1_500, seed=6, learn=False)
    assert env._pop is not None
    rng = np.random.default_rng(1)
    people = env._pop.touched()[:80]
    twins = [copy.deepcopy(c) for c in people]
    now = env.now
    for _ in range(12):
        now += float(rng.uniform(0, 4)) * 86_400.0
        for c, twin in zip(people, twins, strict=True):
            if rng.random() < 0.5:
                ch = ["email", "sms", "in_app", "push"][int(rng.integers(4))]
                opened, clicked = bool(rng.random() < 0.5), bool(rng.random() < 0.2)
                for who in (c, twin):
                    who.history.setdefault(ch, []).append(Contact(now, opened, clicked))
            if rng.random() < 0.2:
                c.features["open_complaint"] = twin.features["open_complaint"] = True
            refresh(c, now, _COUNTER_KEYS, _ZERO_COUNTERS)
            refresh_py(twin, now)
            assert _state(c) == _state(twin)
    assert any(not math.isinf(c._memo["email"][2]) for c in people)


def test_seeded_histories_equal_draws_with_random_uniform() -> None:
    """``_seed_history`` writes ``rng.uniform`` out; the contact times are the same bits."""
    import random

    from simulator.customers import MONTH, WEEK, _seed_history

    feats = {"sends_email_7d": 3, "sends_email_30d": 7, "opens_email_7d": 2}
    feats |= {"opens_email_30d": 4, "clicks_email_7d": 1, "clicks_email_30d": 2}
    now = 1.767e9
    for seed in range(20):
        got = _seed_history(random.Random(seed), feats, "email", now)
        rng = random.Random(seed)
        want = [now - rng.uniform(0.0, WEEK) for _ in range(3)]
        want += [now - rng.uniform(WEEK, MONTH - 1.0) for _ in range(4)]
        assert sorted(c.ts for c in got) == sorted(want)
        assert sum(c.opened for c in got) == 4 and sum(c.clicked for c in got) == 2
