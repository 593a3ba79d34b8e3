"""Multi-step journeys: last touch credits the closing step with what the opening step
did; linear and time decay stay closer to the true shares."""

from __future__ import annotations

import pytest

from simulator.journeys import JourneySpec, figure_table, simulate

TOL = 1e-9


@pytest.fixture(scope="module")
def fig():
    return simulate(20_000, seed=0)


def test_every_rule_hands_out_all_the_credit(fig) -> None:
    assert sum(fig.true_share) == pytest.approx(1.0, abs=TOL)
    for shares in fig.credit_share.values():
        assert sum(shares) == pytest.approx(1.0, abs=TOL)
    assert fig.conversions > 2_000


def test_last_touch_credits_the_closer_for_the_opener(fig) -> None:
    email, _, sms = range(3)
    assert fig.true_share[email] > 0.7 and fig.true_share[sms] < 0.1
    last = fig.credit_share["last_touch"]
    assert last[sms] > 0.5 and last[email] < 0.2  # the ranking is turned upside down
    assert fig.credit_share["linear"][email] == max(fig.credit_share["linear"])

    def per_contact(rule: str, step: int) -> float:
        return fig.credit_share[rule][step] / fig.contacts[step]

    assert per_contact("linear", email) > per_contact("linear", sms)
    assert per_contact("last_touch", sms) > per_contact("time_decay", sms) \
        > per_contact("time_decay", email)


def test_last_touch_is_furthest_from_the_truth(fig) -> None:
    assert fig.error("last_touch") > fig.error("time_decay") + 0.1
    assert fig.error("time_decay") > fig.error("linear")
    assert "| distance to the truth (TV) |" in figure_table(fig)


def test_equal_lifts_at_one_time_make_the_rules_agree() -> None:
    spec = JourneySpec(steps=(("a", 0.0, 1.0, 0.05), ("b", 0.0, 1.0, 0.05)), rules=("linear",
                                                                                     "time_decay"))
    fig = simulate(2_000, seed=3, spec=spec)
    for rule in ("linear", "time_decay"):
        assert fig.credit_share[rule] == pytest.approx((0.5, 0.5), abs=TOL)
    assert fig.error("linear") == pytest.approx(0.0, abs=TOL)
