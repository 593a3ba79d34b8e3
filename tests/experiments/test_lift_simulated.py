"""The journey simulator with a learning champion: its lift over the holdout is positive
and its 95% interval excludes 0 after enough steps (in process, a few seconds)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from policies.draw import decide_among, seed_from_event_id
from policies.types import LoggedBatch
from serving.experiments.variants import (
    AssignmentTable,
    Experiments,
    HoldoutPolicy,
    parse_experiments,
)
from simulator.environment import EnvConfig, JourneyEnvironment
from simulator.run import build_policy
from training.lift import variant_table

STEPS = 3000


def test_learning_champion_beats_the_holdout() -> None:
    env = JourneyEnvironment(EnvConfig(customers=2000))
    catalog = env.catalog
    points = [dp for dp in catalog.names() if dp != "agent_routing"]
    config = {"salt": "sim", "holdout": 0.2,
              "decision_points": {dp: {"variants": {"champion": 0.8, "rules": 0.2}}
                                  for dp in points}}
    exp = Experiments(parse_experiments(config, catalog), catalog, AssignmentTable(None))
    champion = build_policy("linucb", catalog, 0)
    policies = {"champion": champion, "rules": build_policy("rules", catalog, 0),
                "holdout": HoldoutPolicy()}
    obs = env.reset(seed=1)
    rows: list[tuple[str, str, str, float, float]] = []
    pending: list[tuple] = []
    for t in range(STEPS):
        variant = exp.variant_of(obs.customer_id, obs.decision_point)
        event_id = f"sim-{t}"
        decision = decide_among(policies[variant], obs.context, obs.eligible, obs.excluded,
                                seed_from_event_id(event_id), event_id)
        result = env.step(decision)
        rows.append((event_id, obs.decision_point, variant, result.reward,
                     float(result.expected_rewards[result.chosen])))
        if variant == "holdout":
            assert decision.action is not None and decision.action.id == "no_contact"
            assert decision.probability == 1.0
        if variant == "champion":  # the champion learns from its own traffic, online
            ids = [a.id for a in obs.eligible]
            pending.append((obs.context, obs.eligible, ids.index(result.action.id),
                            decision.probability, result.reward))
            if len(pending) == 32:
                c, a, i, p, r = zip(*pending, strict=True)
                champion.learn(LoggedBatch(list(c), list(a), np.array(i), np.array(p),
                                           np.array(r)))
                pending = []
        obs = result.next_observation
    frame = pd.DataFrame(rows, columns=["event_id", "dp", "variant", "reward", "expected"])
    # pooled over decision points (the holdout is global)
    decisions = frame.assign(decision_point="all")
    table = variant_table(decisions, decisions[["event_id", "reward"]], set())
    rows_by = {r["variant"]: r for r in table["all"]["variants"]}
    assert rows_by["holdout"]["decisions"] == (frame["variant"] == "holdout").sum() > 300
    lift = rows_by["champion"]["lift"]["holdout"]
    assert lift["diff"] > 0
    assert lift["ci_low"] > 0, lift  # the interval excludes 0
    # and the truth agrees: the champion's expected reward beats no_contact's
    truth = frame.groupby("variant")["expected"].mean()
    assert truth["champion"] > truth["holdout"]
    assert lift["ci_low"] <= truth["champion"] - truth["holdout"] <= lift["ci_high"]
