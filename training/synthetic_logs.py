"""Logged decisions and rewards in Maestro's Parquet schema, from synthetic customers.

Rows are built as the service builds them (:class:`~training.logs.records.DecisionRecord`,
:class:`~training.logs.records.RewardRecord`) and written in the log's one schema
(:func:`training.logs.dataset.write_records`), so these files read exactly as the
service's do.

For notebooks, benchmarks and tests that need realistic logs without running the
service: customers from :func:`features.synthetic.generate_customers`, the catalog's
candidates filtered by its rules, a logging policy drawing with honest propensities,
and Bernoulli rewards whose probability depends on the customer's hidden channel
affinity and offer taste (so a contextual policy has something to learn).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from features.synthetic import generate_customers
from policies.base import BasePolicy
from policies.catalog import Catalog
from policies.types import Action, Context, Decision, Exclusion
from training.logs.dataset import write_records
from training.logs.records import DecisionRecord, RewardRecord

T0 = 1_780_000_000.0


def click_probability(latent: dict[str, float], action: Action) -> float:
    """The true probability that ``action`` earns a reward of 1 for this customer."""
    if action.channel == "none":
        return 0.04
    affinity = latent.get(f"affinity_{action.channel}", 0.2)
    offer = latent.get(f"offer_{action.features.get('offer', '')}", 0.4)
    return float(np.clip(0.03 + 1.2 * affinity * offer, 0.0, 1.0))


def _decision_record(
    event_id: str,
    ctx: Context,
    eligible: list[Action],
    excluded: list[Exclusion],
    pmf: np.ndarray,
    decision: Decision,
    policy: BasePolicy,
    reward_deadline: float,
) -> DecisionRecord:
    """The log row of one synthetic decision, as the service logs it."""
    return DecisionRecord(
        event_id=event_id,
        request_id=None,
        timestamp=ctx.timestamp,
        customer_id=ctx.customer_id,
        decision_point=ctx.decision_point,
        customer_features=json.dumps(dict(ctx.customer)),
        context=json.dumps(dict(ctx.request)),
        actions=json.dumps(
            [{"id": a.id, "channel": a.channel, "features": dict(a.features)} for a in eligible]
        ),
        probabilities=json.dumps([float(p) for p in pmf]),
        excluded=json.dumps([{"action_id": e.action_id, "reason": e.reason} for e in excluded]),
        action_id=decision.action.id,
        channel=decision.action.channel,
        probability=decision.probability,
        policy=policy.kind,
        policy_version=policy.version,
        variant="champion",
        explored=decision.explored,
        degraded=False,
        customer_known=True,
        reward_deadline=reward_deadline,
        shadow_policy=None,
        shadow_policy_version=None,
        shadow_action_id=None,
        shadow_probability=None,
        replica="synthetic",
    )


def _customer_table(
    customers: int, seed: int
) -> tuple[list[str], list[list[tuple[str, object]]], list[dict[str, float]]]:
    """Synthetic customers' ids, their features as ``(name, Python value)`` pairs (NumPy
    scalars converted) and their hidden latent tastes, one of each per customer, in order."""
    base = generate_customers(customers, seed=seed)
    rows = base.features.drop(columns=["event_timestamp"]).to_dict("records")
    latent = base.latent.drop(columns=["customer_id"]).to_dict("records")
    ids = [row["customer_id"] for row in rows]
    features = [
        [
            (key, v.item() if hasattr(v, "item") else v)
            for key, v in row.items()
            if key != "customer_id"
        ]
        for row in rows
    ]
    return ids, features, latent


def _write_parts(
    logs_dir: Path, decisions: list[DecisionRecord], rewards: list[RewardRecord], seed: int
) -> None:
    """One Parquet part per row kind under ``logs_dir/decisions`` and ``logs_dir/rewards``
    (both directories made, a part written only when it has rows)."""
    for sub, records, kind in (
        ("decisions", decisions, DecisionRecord),
        ("rewards", rewards, RewardRecord),
    ):
        (logs_dir / sub).mkdir(parents=True, exist_ok=True)
        if records:
            write_records(records, kind, logs_dir / sub / f"part-synthetic-{seed}.parquet")


def write_synthetic_logs(
    logs_dir: Path,
    catalog: Catalog,
    logging_policy: BasePolicy,
    n: int,
    decision_point: str = "cart_abandoned",
    customers: int = 2000,
    seed: int = 0,
    click: Callable[[dict[str, float], Action], float] = click_probability,
) -> dict[str, float]:
    """Write ``n`` decisions (and the rewards they earned) under ``logs_dir``.

    ``click(latent, action)``: the true probability of a reward of 1 (by default
    :func:`click_probability`; a test that needs a policy to clearly win passes a
    sharper one). Returns the logging policy's true mean click probability, for reference.
    """
    rng = np.random.default_rng(seed)
    point = catalog[decision_point]
    ids, features, latent = _customer_table(customers, seed)
    decisions: list[DecisionRecord] = []
    rewards: list[RewardRecord] = []
    true_value = 0.0
    for i in range(n):
        k = int(rng.integers(len(ids)))
        customer = dict(features[k])
        t = T0 + 60.0 * i
        ctx = Context(ids[k], customer, {"page": "cart", "device": "mobile"}, decision_point, t)
        eligible, excluded = point.rules.split(ctx, point.actions)
        decision = logging_policy.decide(ctx, eligible, seed=seed * 1_000_003 + i)
        pmf = logging_policy.pmf(ctx, eligible)
        true_value += float(
            sum(p * click(latent[k], a) for p, a in zip(pmf, eligible, strict=True))
        )
        event_id = f"ev-{seed}-{i:07d}"
        decisions.append(
            _decision_record(
                event_id,
                ctx,
                eligible,
                excluded,
                pmf,
                decision,
                logging_policy,
                t + point.reward_window_seconds,
            )
        )
        if rng.random() < click(latent[k], decision.action):
            rewards.append(
                RewardRecord(
                    event_id=event_id,
                    reward=1.0,
                    timestamp=t + 600,
                    counted=True,
                    duplicate=False,
                    late=False,
                    replica="synthetic",
                )
            )
    _write_parts(logs_dir, decisions, rewards, seed)
    return {"logging_true_value": true_value / max(n, 1), "decisions": n, "rewards": len(rewards)}
