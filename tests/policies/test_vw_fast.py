"""The VW adapter's text-free path agrees with VW's own text parser.

Shared examples are built straight from the context (hashed indices memoised,
values pushed as arrays) and reused between a decision and learning from it;
these tests hold that path to the parsed ``shared_line`` and to learning from
freshly built examples.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from policies.registry import make_policy
from policies.types import Action, Context, LoggedBatch
from policies.vw.policy import shared_line

NOW = 1_780_000_000.0


def _context(rng: np.random.Generator, point: str = "default") -> Context:
    customer = {
        "segment": str(rng.choice(["a b|c:d", "loyal", "new"])),
        "lifetime_value": float(rng.gamma(2.0, 50.0)),
        "sends_email_7d": int(rng.integers(0, 3)),  # zeros are dropped by VW
        "refund": float(rng.choice([0.0, -12.5])),
        "vip": bool(rng.random() < 0.5),
        "tier": None,
        "123": 4.0,  # a numeric name hashes as a number in VW
        "é ü": 1.5,
        "last_contact_email_ts": NOW - float(rng.uniform(0, 9)) * 86_400.0,
        "last_contact_sms_ts": 0.0,
        "last_seen_ts": int(NOW) - 3_600,  # integer epoch: an age too
    }
    request = {"page": "cart", "cart_value": float(rng.uniform(0, 90)), "local_hour": 3}
    return Context("c-1", customer, request, point, NOW)


def test_shared_example_matches_the_parsed_text_line() -> None:
    policy = make_policy("vw-cb", seed=1)
    rng = np.random.default_rng(0)
    for _ in range(2):  # cold memo, then warm
        for point in ("default", "cart_abandoned"):
            ctx = _context(rng, point)
            parsed = policy._parser.parse_line(shared_line(ctx))._example
            built = policy._hasher.example(ctx)
            assert built._feat_group_indices == parsed._feat_group_indices == [99, 114]
            for a, b in zip(parsed, built, strict=True):
                assert a.indices == b.indices
                assert np.allclose(a.values, b.values, rtol=1e-5, atol=1e-6)
            label_type = policy._vw.LabelType.CB
            assert built._get_label(label_type).shared and parsed._get_label(label_type).shared


def _weights(policy: object) -> dict[int, float]:
    data = json.loads(policy._ws.json_weights())  # type: ignore[attr-defined]
    return {w["index"]: w["value"] for w in data["weights"]}


@pytest.mark.parametrize("exploration", ["epsilon", "softmax", "squarecb", "bag", "cover"])
def test_reused_examples_learn_exactly_like_fresh_ones(exploration: str) -> None:
    """Decide then learn with reused examples == learn from examples built per row."""
    fast = make_policy("vw-cb", exploration=exploration, seed=3)
    ref = make_policy("vw-cb", exploration=exploration, seed=3)
    vw = ref._vw
    rng = np.random.default_rng(5)
    actions = [Action(f"a{i}", "email", {"offer": f"o{i % 3}", "pct": i}) for i in range(5)]
    for _ in range(6):
        contexts = [_context(rng, str(rng.choice(["default", "onboarding"]))) for _ in range(16)]
        eligible = [actions[: int(rng.integers(2, 6))] for _ in contexts]
        probs = []
        for ctx, acts in zip(contexts, eligible, strict=True):
            pmf = fast.raw_pmf(ctx, acts)
            fresh = ref._ws.predict_one(ref._examples(ctx, acts))
            expected = [0.0] * len(acts)
            for index, prob in fresh:
                expected[index] = prob
            assert pmf == expected
            probs.append(max(pmf))
        chosen = np.array([int(rng.integers(len(a))) for a in eligible])
        rewards = rng.normal(size=len(contexts))
        fast.learn(LoggedBatch(contexts, eligible, chosen, np.array(probs), rewards))
        for ctx, acts, i, p, r in zip(contexts, eligible, chosen, probs, rewards, strict=True):
            examples = ref._examples(ctx, acts)
            examples[1 + int(i)].set_label(vw.CBLabel(label=(-float(r), float(p))))
            ref._ws.learn_one(examples)
    assert _weights(fast) == _weights(ref)
    loaded = type(fast).load(fast.save())
    ctx = _context(rng)
    assert loaded.raw_pmf(ctx, actions) == fast.raw_pmf(ctx, actions)


def test_a_model_trained_on_text_lines_scores_text_free_examples_alike() -> None:
    """Hashes are the text parser's, so models trained from VW text stay usable."""
    fast = make_policy("vw-cb", exploration="softmax", seed=4)
    text = make_policy("vw-cb", exploration="softmax", seed=4)
    vw = text._vw
    rng = np.random.default_rng(6)
    actions = [Action(f"a{i}", "sms", {"offer": f"o{i}"}) for i in range(4)]
    contexts = [_context(rng) for _ in range(200)]
    chosen = rng.integers(0, 4, len(contexts))
    rewards = np.array(
        [
            c.customer["lifetime_value"] / 100.0 * (i == 1)
            for c, i in zip(contexts, chosen, strict=True)
        ]
    )
    fast.learn(LoggedBatch(contexts, [actions] * 200, chosen, np.full(200, 0.25), rewards))
    for ctx, i, r in zip(contexts, chosen, rewards, strict=True):
        lines = [shared_line(ctx)] + [text._action_text(a) for a in actions]
        examples = [text._parser.parse_line(line) for line in lines]
        examples[1 + int(i)].set_label(vw.CBLabel(label=(-float(r), 0.25)))
        text._ws.learn_one(examples)
    a, b = _weights(fast), _weights(text)
    assert a.keys() == b.keys()
    keys = sorted(a)
    assert np.allclose([a[k] for k in keys], [b[k] for k in keys], rtol=1e-3, atol=1e-5)
    probe = _context(rng)
    assert np.allclose(text.raw_pmf(probe, actions), fast.raw_pmf(probe, actions), atol=1e-4)


def test_read_only_customer_records_build_the_same_example_from_their_template() -> None:
    """A read-only record (the feature source's) is hashed once and only its ``*_ts``
    ages are recomputed: same indices and values as the full build, at any ``now``,
    including ages of exactly 0 (dropped) and never-contacted (0) epochs."""
    from types import MappingProxyType

    from policies.vw.policy import VWPolicy
    from policies.vw.shared import SharedHasher

    policy = VWPolicy()
    hasher = SharedHasher(policy._core, policy._vw)
    now = 1.7e9
    customer = {"tier": "gold", "tenure_days": 400, "ltv": 812.5, "opens_7d": 0,
                "consent_sms": True, "last_contact_email_ts": now - 3 * 86400.0,
                "last_contact_sms_ts": 0.0, "last_event_ts": int(now - 60),
                "segment": None, "refund": 0.0, "credit": -0.0, "score": -2.5}
    frozen = MappingProxyType(dict(customer))

    def features(ex: object) -> list[tuple[int, float]]:
        group = ex[ord("c")]  # type: ignore[index]
        return list(zip(group.indices, group.values, strict=True))

    for at in (now, now + 86400.0, now - 60):  # the last: last_event_ts is exactly now
        plain = Context("c-1", customer, {"page": "cart"}, "default", at)
        ro = Context("c-1", frozen, {"page": "cart"}, "default", at)
        assert features(hasher.example(ro)) == features(hasher.example(plain))
    assert len(hasher._templates) == 1
