"""The one place a pmf becomes a :class:`~policies.types.Decision`.

A policy only says how likely each eligible action is (:meth:`PmfPolicy.raw_pmf`).
This module mixes in the policy's exploration floor, draws one action with the uniform
number derived from the decision's seed (the signed event id in serving), ranks every
action and builds the ``Decision``, so the logged probability is exactly the one the
action was drawn with, replaying a seed draws the same action, and a new policy cannot
get any of this wrong: it never sees the draw. Modelled on coba's ``SafeLearner``, which
wraps every learner's pmf the same way (Rucker et al., *coba*, 2021).

A policy may abstain by returning an empty pmf: the decision then has no action, as when
nothing is eligible (the experiment holdout does so when ``no_contact`` is not offered).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import ClassVar, Protocol

import numpy as np

from core.compiled import compiled_or
from policies.types import Action, Context, Decision, Exclusion, RankedAction, validate_actions

_MASK64 = (1 << 64) - 1


class PmfPolicy(Protocol):
    """What the draw needs from a policy: its name, version, floor and own pmf."""

    kind: ClassVar[str]
    version: str
    exploration_floor: float

    def raw_pmf(self, context: Context, actions: Sequence[Action]) -> Sequence[float]:
        """The policy's own pmf over ``actions``, shape ``(n_actions,)``, before the floor;
        empty to abstain."""
        ...


def seed_from_event_id(event_id: str) -> int:
    """A 64-bit seed derived from an event id (stable across processes and machines)."""
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "little")


def uniform_from_seed(seed: int) -> float:
    """A uniform number in [0, 1) from ``seed`` by one SplitMix64 step (Steele et al., 2014)."""
    z = (seed + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    z ^= z >> 31
    return (z >> 11) * (1.0 / (1 << 53))


def apply_floor(pmf: np.ndarray | Sequence[float], floor: float) -> list[float]:
    """Mix ``pmf`` (shape ``(n_actions,)``) with the uniform distribution:
    ``(1 - floor) * pmf + floor / n_actions``.

    Every action then has probability at least ``floor / n_actions``. The result is
    renormalised so it sums to 1 within floating-point error; a pmf with no mass,
    negative or non-finite entries becomes uniform (never a silent bias); an empty pmf
    stays empty. Pure Python on purpose: for the handful of actions of one decision it
    is several times faster than NumPy's per-call overhead.
    """
    probs = list(map(float, pmf))
    n = len(probs)
    if n == 0:
        return probs
    if floor > 0.0:
        keep, add = 1.0 - floor, floor / n
        probs = [keep * p + add for p in probs]
    total = math.fsum(probs)
    if not math.isfinite(total) or total <= 0.0 or min(probs) < 0.0:
        return [1.0 / n] * n
    if total == 1.0:  # p / 1.0 is p: skip the division
        return probs
    return [p / total for p in probs]


def draw(pmf: Sequence[float], seed: int) -> int:
    """Index drawn from ``pmf`` (shape ``(n_actions,)``) by inverse-CDF sampling with the
    seed's uniform number. Zero-probability entries are never returned."""
    u = uniform_from_seed(seed) * math.fsum(pmf)
    acc = 0.0
    last = -1
    for i, p in enumerate(pmf):
        if p <= 0.0:
            continue
        acc += p
        last = i
        if u < acc:
            return i
    return last


def finish_py(
    probs: list[float],
    actions: Sequence[Action],
    seed: int,
    event_id: str,
    excluded: tuple[Exclusion, ...],
    kind: str,
    version: str,
) -> Decision:
    """The decision drawing from ``probs`` (the final pmf over ``actions``, shape
    ``(n_actions,)``) with the seed's uniform number, every action ranked by probability
    (ties in their order). The pure-Python twin of ``policies._decide.finish`` (compiled,
    same results)."""
    index = draw(probs, seed)
    order = sorted(range(len(probs)), key=probs.__getitem__, reverse=True)
    ranking = tuple(RankedAction(actions[i].id, probs[i]) for i in order)
    return Decision(
        event_id=event_id,
        action=actions[index],
        probability=probs[index],
        ranking=ranking,
        excluded=excluded,
        policy=kind,
        policy_version=version,
        explored=probs[index] < probs[order[0]],
    )


#: :func:`finish_py`, compiled (``policies._decide``) when it is built
finish = compiled_or("policies._decide", "finish", finish_py)


def seen_only(policy: PmfPolicy, context: Context) -> Context:
    """``context`` with only the customer features ``policy`` was trained on, when it
    records them (``known_features``) and the context carries others: a feature declared
    after training is ignored, not hashed into the policy's inputs. Unchanged otherwise."""
    known = getattr(policy, "known_features", None)
    if known is None or known.issuperset(context.customer):
        return context
    customer = {k: v for k, v in context.customer.items() if k in known}
    return Context.trusted(
        context.customer_id, customer, context.request, context.decision_point, context.timestamp
    )


def raise_floor(policy: PmfPolicy, floor: float) -> None:
    """Raise ``policy``'s exploration floor to at least ``floor`` (its decision point's
    exploration budget), never lower it. The floor is part of the pmf every draw uses, so
    the logged probability stays the one the action was drawn with."""
    if not 0.0 <= floor <= 1.0:
        raise ValueError(f"exploration floor must lie in [0, 1], got {floor}")
    if policy.exploration_floor < floor:
        policy.exploration_floor = floor


def floored_pmf(policy: PmfPolicy, context: Context, actions: Sequence[Action]) -> list[float]:
    """``policy``'s pmf over ``actions`` with its exploration floor, shape ``(n_actions,)``
    (empty when it abstains)."""
    context = seen_only(policy, context)
    return apply_floor(policy.raw_pmf(context, actions), policy.exploration_floor)


def no_action(policy: PmfPolicy, event_id: str, excluded: tuple[Exclusion, ...]) -> Decision:
    """The decision without an action: probability 0, an empty ranking."""
    return Decision(
        event_id=event_id,
        action=None,
        probability=0.0,
        ranking=(),
        excluded=excluded,
        policy=policy.kind,
        policy_version=policy.version,
    )


def decide(
    policy: PmfPolicy,
    context: Context,
    actions: Sequence[Action],
    seed: int,
    event_id: str = "",
    excluded: tuple[Exclusion, ...] = (),
) -> Decision:
    """Draw one of ``actions`` (all eligible, at least one) from ``policy``'s floored pmf.

    Same context, actions, model and seed give the same draw; ``excluded`` (the rules'
    exclusions) is recorded in the decision.
    """
    if not actions:
        validate_actions(actions)  # raises: at least one action is required
    return decide_among(policy, context, actions, excluded, seed, event_id)


def decide_among(
    policy: PmfPolicy,
    context: Context,
    eligible: Sequence[Action],
    excluded: Sequence[Exclusion],
    seed: int,
    event_id: str = "",
) -> Decision:
    """Let ``policy`` draw among already-filtered ``eligible`` actions, recording the rules'
    ``excluded`` ones. When nothing is eligible the decision has ``action=None``,
    probability 0 and an empty ranking."""
    excluded = tuple(excluded)
    if not eligible:
        return no_action(policy, event_id, excluded)
    validate_actions(eligible)
    # floored_pmf's body, inline: the draw of every decision, one call less
    if getattr(policy, "known_features", None) is not None:
        context = seen_only(policy, context)
    probs = apply_floor(policy.raw_pmf(context, eligible), policy.exploration_floor)
    if not probs:
        return no_action(policy, event_id, excluded)
    return finish(probs, eligible, seed, event_id, excluded, policy.kind, policy.version)
