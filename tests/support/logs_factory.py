"""Synthetic decision and reward logs in the serving layer's Parquet schema."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from policies.base import BasePolicy
from policies.types import Action, Context

T0 = 1_780_000_000.0


def action_dicts(actions) -> str:
    return json.dumps(
        [{"id": a.id, "channel": a.channel, "features": dict(a.features)} for a in actions]
    )


def decision_row(
    event_id: str,
    context: Context,
    actions: list[Action],
    pmf,
    chosen: int,
    t: float,
    window_s: float = 3600.0,
    policy: str = "uniform",
) -> dict:
    return {
        "event_id": event_id,
        "request_id": None,
        "timestamp": pd.Timestamp(t, unit="s", tz="UTC"),
        "customer_id": context.customer_id,
        "decision_point": context.decision_point,
        "customer_features": json.dumps(dict(context.customer)),
        "context": json.dumps(dict(context.request)),
        "actions": action_dicts(actions),
        "probabilities": json.dumps([float(p) for p in pmf]),
        "excluded": "[]",
        "action_id": actions[chosen].id,
        "channel": actions[chosen].channel,
        "probability": float(pmf[chosen]),
        "policy": policy,
        "policy_version": "0",
        "variant": "champion",
        "explored": False,
        "degraded": False,
        "customer_known": True,
        "reward_deadline": pd.Timestamp(t + window_s, unit="s", tz="UTC"),
        "replica": "test",
    }


def reward_row(
    event_id: str,
    reward: float,
    t: float,
    counted: bool = True,
    duplicate: bool = False,
    late: bool = False,
) -> dict:
    return {
        "event_id": event_id,
        "reward": float(reward),
        "timestamp": pd.Timestamp(t, unit="s", tz="UTC"),
        "counted": counted,
        "duplicate": duplicate,
        "late": late,
        "replica": "test",
    }


def write_logs(
    logs_dir: Path, decisions: list[dict], rewards: list[dict], part: str = "part-0"
) -> None:
    (logs_dir / "decisions").mkdir(parents=True, exist_ok=True)
    (logs_dir / "rewards").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(decisions).to_parquet(logs_dir / "decisions" / f"{part}.parquet")
    if rewards:
        pd.DataFrame(rewards).to_parquet(logs_dir / "rewards" / f"{part}.parquet")


def simulate_logs(
    problem, logging: BasePolicy, n: int, seed: int, decision_point: str = "cart_abandoned"
) -> tuple[list[dict], list[dict]]:
    """``n`` decisions drawn by ``logging`` on the contextual problem, rewards Bernoulli."""
    rng = np.random.default_rng(seed)
    actions = list(problem.actions)
    decisions, rewards = [], []
    for i in range(n):
        ctx, s = problem.context(rng)
        ctx = Context(f"c-{i % 500:06d}", ctx.customer, ctx.request, decision_point, T0 + i)
        pmf = logging.pmf(ctx, actions)
        d = logging.decide(ctx, actions, seed=seed * 7919 + i)
        a = actions.index(d.action)
        event_id = f"ev-{seed}-{i}"
        decisions.append(decision_row(event_id, ctx, actions, pmf, a, T0 + i, policy=logging.kind))
        r = float(rng.random() < problem.table[s, a])
        if r:  # only positive rewards are posted; the rest get the default reward 0
            rewards.append(reward_row(event_id, r, T0 + i + 10))
    return decisions, rewards


def decision_record(
    event_id: str, customer_id: str, t: float, decision_point: str = "cart_abandoned"
):
    """One decision as the service logs it (a :class:`DecisionRecord`, times in epoch
    seconds): a uniform choice between an email and no contact."""
    from training.logs.records import DecisionRecord

    ctx = Context(customer_id, {"consent_email": True}, {"page": "cart"}, decision_point, t)
    actions = [Action("email_offer", "email"), Action("no_contact", "none")]
    row = decision_row(event_id, ctx, actions, [0.5, 0.5], 0, t)
    shadow = dict.fromkeys(
        ("shadow_policy", "shadow_policy_version", "shadow_action_id", "shadow_probability")
    )
    return DecisionRecord(**{**row, **shadow, "timestamp": t, "reward_deadline": t + 3600.0})
