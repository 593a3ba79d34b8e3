"""The environment's shortcuts agree exactly with the plain computations they replace."""

from __future__ import annotations

import math

from policies.types import NO_CONTACT_ID, Context
from simulator.environment import EnvConfig, JourneyEnvironment
from simulator.run import build_policy, run_policy


def _played(steps: int = 3_000) -> JourneyEnvironment:
    env = JourneyEnvironment(EnvConfig(customers=150))
    run_policy(build_policy("uniform", env.catalog, 0), env, steps, seed=4, learn=False)
    return env


def test_truth_equals_the_scalar_formulas_bit_for_bit() -> None:
    """Vectorised-per-customer truth == conversion_prob / value / cost per action."""
    env = _played()
    econ = env.economics
    assert env._pop is not None
    checked = 0
    for c in env._pop.touched()[:60]:
        for point in ("default", "cart_abandoned", "churn_risk", "billing_overdue"):
            actions = env.catalog[point].actions
            for hour in (0, 8, 13, 19, 23):
                truth, conv = econ.truth(point, c, actions, hour, env.now)
                fatigue = econ.fatigue(c, env.now)
                value = econ.value(point, c)
                complaint = econ.complaint_prob(c, env.now) * econ.complaint_cost
                for i, a in enumerate(actions):
                    p = econ.conversion_prob(point, c, a, hour, fatigue)
                    assert conv[i] == p
                    if a.id == NO_CONTACT_ID or a.channel == "none":
                        assert truth[i] == p * value
                    else:
                        keep = 1.0 - econ.discount(a)
                        cost = econ.cost(point, a.channel)
                        assert truth[i] == p * value * keep - cost - complaint
                    checked += 1
    assert checked > 1_000


def test_memoised_counters_equal_a_full_recount() -> None:
    """Counters kept between visits equal those recomputed from the whole history."""
    env = _played()
    assert env._pop is not None
    later = env.now + 2.5 * 86_400.0  # some contacts leave their windows meanwhile
    for now in (env.now, later, later + 6 * 86_400.0):
        for c in env._pop.touched():
            c.refresh(now)
            kept = dict(c.features), c.recent_contacts
            c._memo.clear()
            c.refresh(now)
            assert (dict(c.features), c.recent_contacts) == kept


def test_memoised_local_hour_equals_the_rules_hour() -> None:
    from policies.rules import local_hour

    env = JourneyEnvironment(EnvConfig(customers=20))
    env.reset(seed=0)
    for zone in ("Europe/Madrid", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns", None):
        for k in range(0, 400 * 86_400, 7_919):  # across both DST changes of the year
            env.now = 1_767_225_600.0 + k
            assert env._local_hour(zone) == local_hour(env.now, zone)


def test_observations_carry_a_plain_valid_context() -> None:
    """The context is built trusted; it must still pass the full feature check."""
    env = JourneyEnvironment(EnvConfig(customers=50))
    obs = env.reset(seed=2)
    policy = build_policy("uniform", env.catalog, 0)
    from policies.draw import decide_among

    for t in range(300):
        ctx = obs.context
        Context(ctx.customer_id, ctx.customer, ctx.request, ctx.decision_point, ctx.timestamp)
        assert all(not isinstance(v, float) or math.isfinite(v) for v in ctx.customer.values())
        obs = env.step(decide_among(policy, ctx, obs.eligible, obs.excluded, t)).next_observation
