"""One decision, end to end inside the decision core: rules first, then the policy.

Rules run before the policy, so a forbidden action is never in the pmf the policy
draws from, whatever the policy (learned, fallback or kill-switch ``rules``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from policies.base import BasePolicy, Policy
from policies.rules import RuleSet
from policies.types import Action, Context, Decision, Exclusion, validate_actions


def eligible_actions(
    rules: RuleSet, context: Context, candidates: Sequence[Action]
) -> tuple[list[Action], list[Exclusion]]:
    """Validate the candidates and split them into eligible and excluded (with reasons)."""
    validate_actions(candidates)
    return rules.split(context, candidates)


def decide_with_rules(
    policy: Policy,
    rules: RuleSet,
    context: Context,
    candidates: Sequence[Action],
    seed: int,
    event_id: str = "",
) -> Decision:
    """Apply ``rules`` to ``candidates``, then let ``policy`` draw among the eligible ones.

    When nothing is eligible the decision has ``action=None``, probability 0, an empty
    ranking, and every candidate in ``excluded``.
    """
    eligible, excluded = eligible_actions(rules, context, candidates)
    return decide_among(policy, context, eligible, excluded, seed, event_id)


def decide_among(
    policy: Policy,
    context: Context,
    eligible: Sequence[Action],
    excluded: Sequence[Exclusion],
    seed: int,
    event_id: str = "",
) -> Decision:
    """Let ``policy`` draw among already-filtered ``eligible`` actions (serving's fallback
    path reuses the same split so rules are evaluated once per request)."""
    if not eligible:
        return Decision(
            event_id=event_id,
            action=None,
            probability=0.0,
            ranking=(),
            excluded=tuple(excluded),
            policy=policy.kind,
            policy_version=policy.version,
        )
    # records ``excluded`` as it decides; an instance's own ``decide`` (a wrapper, a test's
    # failing stand-in) is still called
    if getattr(policy.decide, "__func__", None) is BasePolicy.decide:
        return policy._decide(context, eligible, seed, event_id, tuple(excluded))  # type: ignore[attr-defined, no-any-return]
    decision = policy.decide(context, eligible, seed, event_id)
    return replace(decision, excluded=tuple(excluded))
