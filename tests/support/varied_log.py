"""A small but varied decision log for the training fast-path tests: every value type,
``*_ts`` timestamps, zeros, a column whose type changes, three key orders, empty
customers, two decision points and action lists of every length."""

from __future__ import annotations

import numpy as np
from logs_factory import T0, decision_row, reward_row

from policies.types import Action, Context

ACTIONS = [
    Action("email_offer", "email", {"category": "marketing", "discount_pct": 10}),
    Action("push_nudge", "push", {"category": "marketing"}),
    Action("sms_reminder", "sms", {"category": "service", "priority": 2.5}),
    Action("in_app_banner", "in_app", {"category": "marketing", "new": True}),
    Action("no_contact", "none", {"category": "none"}),
]


def _customer(rng: np.random.Generator, i: int) -> dict:
    """Every kind of value: floats (zero, negative, large), ints, bools, None, strings,
    ``*_ts`` timestamps (0 = never), a column whose type changes between rows, and
    three key orders (three schema groups)."""
    out = {
        "segment": str(rng.choice(["new", "loyal", "vip"])),
        "ltv": float(rng.choice([0.0, -3.5, 1e9, rng.exponential(200.0)])),
        "orders": int(rng.integers(0, 5)),
        "consent_email": bool(rng.random() < 0.5),
        "last_page": None if rng.random() < 0.3 else "cart",
        "last_contact_email_ts": float(rng.choice([0.0, T0 + i - rng.uniform(0, 9e5)])),
        "signup_ts": int(T0 - 86_400 * int(rng.integers(0, 400))),
        "mixed": [1, 2.5, "x", None, True][i % 5],
        "churn_risk": float(rng.random()),
    }
    if i % 3 == 1:
        out = dict(reversed(list(out.items())))
    elif i % 3 == 2:
        out.pop("orders")
    if i % 17 == 0:
        out = {}
    return out


def varied_log(n: int = 240, seed: int = 0) -> tuple[list[dict], list[dict]]:
    rng = np.random.default_rng(seed)
    decisions, rewards = [], []
    for i in range(n):
        k = int(rng.integers(1, len(ACTIONS) + 1))
        acts = ACTIONS[:k] if i % 2 else ACTIONS[-k:]
        request = {"page": "cart", "device": ["mobile", "web"][i % 2], "items": i % 4}
        point = "cart_abandoned" if i % 4 else "browse_abandoned"
        ctx = Context(f"c-{i % 50}", _customer(rng, i), request, point, T0 + i)
        pmf = rng.dirichlet(np.ones(k))
        chosen = int(rng.integers(k))
        decisions.append(decision_row(f"e{i}", ctx, acts, pmf, chosen, T0 + i))
        if rng.random() < 0.4:
            rewards.append(reward_row(f"e{i}", float(rng.integers(1, 4)), T0 + i + 5))
    return decisions, rewards
