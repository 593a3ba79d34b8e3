"""Outcome events become attributed rewards, on the real stores: the contact history
(SQLite), the event log with its shared claim index, and the training join reading the
Parquet those rewards were rolled into. A purchase three days after two contacts is split
as each rule defines, and training learns exactly those shares."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from policies.catalog import load_catalog
from policies.contact_rules import Contact
from serving.eventlog.log import EventLog
from serving.service.ids import EventIdSigner
from serving.service.outcomes import OutcomeStage
from serving.state.contacts import Commit
from serving.state.contacts_sqlite import SQLiteContactStore
from training.data import load_training_set
from training.logs.records import DecisionRecord

DAY = 86_400.0
TOL = 1e-9
CATALOG = """
defaults:
  reward_window_hours: 96
  rewards: {purchase: properties.value, message_clicked: 0.2, unsubscribed: -1}
decision_points:
  default:
    actions: [{id: email_last, channel: email, features: {category: marketing}},
              {id: push_last, channel: push, features: {category: marketing}}]
  linear:
    attribution: linear
    actions: [{id: email_lin, channel: email, features: {category: marketing}},
              {id: push_lin, channel: push, features: {category: marketing}}]
  decay:
    attribution: {rule: time_decay, half_life: 24h}
    actions: [{id: email_decay, channel: email, features: {category: marketing}},
              {id: push_decay, channel: push, features: {category: marketing}}]
  short:
    reward_window_hours: 60
    attribution: linear
    actions: [{id: email_short, channel: email, features: {category: marketing}},
              {id: push_short, channel: push, features: {category: marketing}}]
"""
#: each point's two actions, the first on email, the second on push
ACTIONS = {"default": ("email_last", "push_last"), "linear": ("email_lin", "push_lin"),
           "decay": ("email_decay", "push_decay"), "short": ("email_short", "push_short")}


class World:
    """A catalog, a signer, a real contact store and event log, and the outcome stage."""

    def __init__(self, tmp: Path, reward_mode: str = "first") -> None:
        (tmp / "catalog.yaml").write_text(CATALOG)
        self.catalog = load_catalog(tmp / "catalog.yaml")
        self.signer = EventIdSigner(b"outcome-test-secret-key")
        self.store = SQLiteContactStore(tmp / "contacts.db")
        self.logs = tmp / "logs"
        self.reward_mode = reward_mode
        self.log = EventLog(self.logs, reward_mode=reward_mode).open()
        self.stage = OutcomeStage(self.catalog, self.store, self.signer, self.log)

    def contact(self, customer: str, point: str, which: int, ts: float) -> str:
        """One logged decision of ``point`` at ``ts`` and its contact; its event id."""
        dp = self.catalog[point]
        eid = self.signer.issue(ts + dp.reward_window_seconds)
        action = next(a for a in dp.actions if a.id == ACTIONS[point][which])
        acts = [{"id": a.id, "channel": a.channel, "features": dict(a.features)}
                for a in dp.actions]
        self.log.append_decision(DecisionRecord(
            eid, None, ts, customer, point, "{}", "{}", json.dumps(acts), "[0.5, 0.5]", "[]",
            action.id, action.channel, 0.5, "uniform", "0", "champion", False, False, True,
            ts + dp.reward_window_seconds, None, None, None, None,
        ))
        contact = Contact(ts, action.channel, action.id, "", "marketing")
        assert self.store.commit(Commit(customer, eid, None, contact), ts) == "committed"
        return eid

    def trained_rewards(self, now: float) -> dict[str, float]:
        """The rewards the training join learns, by event id, after rolling the log."""
        self.log.roll(final=True)
        data = load_training_set(self.logs, self.catalog, now, reward_mode=self.reward_mode)
        return dict(zip(data.frame["event_id"], data.frame["reward"], strict=True))

    def close(self) -> None:
        self.log.close()
        self.store.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.close()


def purchase_after_two_contacts(world: World, customer: str, point: str) -> tuple[str, str]:
    """Contacts at day 0 (email) and day 1 (push); the purchase (value 90) at day 3 = now."""
    now = time.time()
    first = world.contact(customer, point, 0, now - 3 * DAY)
    second = world.contact(customer, point, 1, now - 2 * DAY)
    written = world.stage.record(customer, "purchase", {"value": 90.0}, now, now)
    assert all(w["counted"] for w in written)
    return first, second


@pytest.mark.parametrize(
    ("point", "first_share", "rule"),
    [("default", 0.0, "last_touch"), ("linear", 0.5, "linear"), ("decay", 1 / 3, "time_decay")],
    ids=["last_touch", "linear", "time_decay"],
)
def test_a_purchase_three_days_after_two_contacts_trains_on_its_split(
    world: World, point: str, first_share: float, rule: str
) -> None:
    first, second = purchase_after_two_contacts(world, f"c-{point}", point)
    learned = world.trained_rewards(time.time() + 10 * DAY)
    assert learned[first] == pytest.approx(90.0 * first_share, abs=TOL)
    assert learned[second] == pytest.approx(90.0 * (1 - first_share), abs=TOL)
    rows = _reward_rows(world)
    assert set(rows["attribution"]) == {rule}
    assert set(rows["source"]) == {"outcome:purchase"}


def test_each_decision_counts_only_within_its_own_window(world: World) -> None:
    # the 60-hour point: the contact three days before the purchase is out of its window
    first, second = purchase_after_two_contacts(world, "c-short", "short")
    learned = world.trained_rewards(time.time() + 10 * DAY)
    assert learned[second] == pytest.approx(90.0, abs=TOL)  # linear over the one left
    assert learned[first] == pytest.approx(0.0, abs=TOL)  # the default reward, no share


def test_a_message_outcome_joins_the_latest_contact_on_its_channel(world: World) -> None:
    now = time.time()
    email = world.contact("c-click", "linear", 0, now - 2 * DAY)
    world.contact("c-click", "linear", 1, now - DAY)  # a later push: not the clicked one
    written = world.stage.record("c-click", "message_clicked", {"channel": "email"}, now, now)
    assert [(w["event_id"], w["reward"]) for w in written] == [(email, 0.2)]


def test_a_duplicate_outcome_is_counted_once(world: World) -> None:
    now = time.time()
    eid = world.contact("c-dup", "default", 0, now - DAY)
    props = {"value": 40.0}
    assert len(world.stage.record("c-dup", "purchase", props, now - 60, now, now - 60)) == 1
    assert world.stage.record("c-dup", "purchase", props, now - 60, now, now - 60) == []
    assert world.trained_rewards(now + 10 * DAY)[eid] == pytest.approx(40.0, abs=TOL)
    assert len(_reward_rows(world)) == 1


def test_reward_then_outcome_first_claim_wins(world: World) -> None:
    now = time.time()
    eid = world.contact("c-both", "default", 0, now - DAY)
    assert world.log.record_reward(eid, 1.0, False).accepted
    written = world.stage.record("c-both", "purchase", {"value": 70.0}, now, now)
    assert [w["counted"] for w in written] == [False]
    assert world.trained_rewards(now + 10 * DAY)[eid] == pytest.approx(1.0, abs=TOL)


def test_outcome_then_reward_sum_mode_adds_them(tmp_path: Path) -> None:
    world = World(tmp_path, reward_mode="sum")
    try:
        now = time.time()
        eid = world.contact("c-sum", "default", 0, now - DAY)
        world.stage.record("c-sum", "unsubscribed", {"channel": "email"}, now, now)
        outcome = world.log.record_reward(eid, 2.5, False)
        assert outcome.accepted and outcome.duplicate
        data = world.trained_rewards(now + 10 * DAY)
        assert data[eid] == pytest.approx(1.5, abs=TOL)  # -1 + 2.5
    finally:
        world.close()


def test_an_outcome_naming_its_decision_joins_it_alone(world: World) -> None:
    now = time.time()
    first = world.contact("c-named", "linear", 0, now - 2 * DAY)
    world.contact("c-named", "linear", 1, now - DAY)
    written = world.stage.record("c-named", "purchase", {"value": 10.0, "event_id": first},
                                 now, now)
    assert [(w["event_id"], w["reward"], w["attribution"]) for w in written] == [
        (first, 10.0, "event_id")]


def _reward_rows(world: World):
    import pandas as pd

    return pd.read_parquet(world.logs / "rewards")


def test_maestro_report_reads_the_attributed_rewards(world: World) -> None:
    from training.lift import experiment_report

    purchase_after_two_contacts(world, "c-report", "linear")
    world.log.roll(final=True)
    report = experiment_report(world.logs, world.catalog, time.time() + 10 * DAY)
    (row,) = report["decision_points"]["linear"]["variants"]
    assert (row["variant"], row["decisions"], row["rewards"]) == ("champion", 2, 2)
    assert row["mean_reward"] == pytest.approx(45.0, abs=TOL)
