"""The compiled end of a decision (``policies._decide.finish``: seeded draw, ranking,
Decision) equals its Python twin (``policies.draw.finish_py``), and deciding through
``decide_among`` records the rules' exclusions as before."""

from __future__ import annotations

import numpy as np
import pytest

from policies.draw import apply_floor, decide_among, finish_py
from policies.registry import make_policy
from policies.types import Action, Context, Decision, Exclusion, RankedAction


def test_the_compiled_extension_is_installed_and_used() -> None:
    from policies import _decide, draw

    assert draw.finish is _decide.finish


def _pmfs(rng: np.random.Generator) -> list[list[float]]:
    out = [[1.0], [0.5, 0.5], [0.0, 1.0, 0.0], [0.25] * 4, [0.0, 0.0]]
    for n in (2, 3, 5, 10, 64, 65, 200):
        raw = rng.random(n) * (rng.random(n) < 0.7)
        raw[int(rng.integers(n))] += 0.1
        if n > 3:  # ties, which keep their order in the ranking
            raw[1] = raw[0]
            raw[-1] = raw[0]
        out.append(apply_floor(raw, float(rng.choice([0.0, 0.1]))))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_compiled_finish_equals_the_python_twin(seed: int) -> None:
    from policies._decide import finish

    rng = np.random.default_rng(seed)
    excluded = (Exclusion("x", "no_consent:sms"),)
    for probs in _pmfs(rng):
        actions = [Action(f"a{i}", "email") for i in range(len(probs))]
        seeds = [int(s) for s in rng.integers(0, 2**63, 20, dtype=np.int64)]
        for s in [0, 1, 2**64 - 1, 2**64 + 5, -3, *seeds]:
            a = finish_py(probs, actions, s, "ev", excluded, "vw-cb", "7")
            b = finish(probs, actions, s, "ev", excluded, "vw-cb", "7")
            assert type(b) is Decision and a == b and hash(a.ranking) == hash(b.ranking)
            assert all(type(r) is RankedAction for r in b.ranking)
            assert a.probability.hex() == b.probability.hex()
            assert repr(a) == repr(b)


def test_decide_among_records_exclusions_and_draws_as_decide() -> None:
    policy = make_policy("vw-cb", seed=1, exploration="softmax")
    actions = [Action(f"a{i}", "email", {"offer": f"o{i}"}) for i in range(4)]
    ctx = Context("c-1", {"tier": "gold", "ltv": 3.5}, {"page": "cart"}, "default", 1.7e9)
    excluded = [Exclusion("b", "quiet_hours")]
    for seed in range(50):
        plain = policy.decide(ctx, actions, seed, f"e{seed}")
        among = decide_among(policy, ctx, actions, excluded, seed, f"e{seed}")
        assert plain.excluded == () and among.excluded == tuple(excluded)
        assert among.action == plain.action and among.probability == plain.probability
        assert among.ranking == plain.ranking and among.explored == plain.explored
        assert sum(r.probability for r in among.ranking) == pytest.approx(1.0)
