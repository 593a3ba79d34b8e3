"""One decision, end to end inside the decision core: rules first, then the policy's pmf,
then the draw (:mod:`policies.draw`).

Rules run before the policy, so a forbidden action is never in the pmf the draw uses,
whatever the policy (learned, fallback or kill-switch ``rules``).
"""

from __future__ import annotations

from collections.abc import Sequence

from policies.draw import PmfPolicy, decide_among
from policies.rules import RuleSet
from policies.types import Action, Context, Decision, Exclusion, validate_actions


def eligible_actions(
    rules: RuleSet, context: Context, candidates: Sequence[Action]
) -> tuple[list[Action], list[Exclusion]]:
    """Validate the candidates and split them into eligible and excluded (with reasons)."""
    validate_actions(candidates)
    return rules.split(context, candidates)


def decide_with_rules(
    policy: PmfPolicy,
    rules: RuleSet,
    context: Context,
    candidates: Sequence[Action],
    seed: int,
    event_id: str = "",
) -> Decision:
    """Apply ``rules`` to ``candidates``, then draw from ``policy``'s pmf over the eligible
    ones.

    When nothing is eligible the decision has ``action=None``, probability 0, an empty
    ranking, and every candidate in ``excluded``.
    """
    eligible, excluded = eligible_actions(rules, context, candidates)
    return decide_among(policy, context, eligible, excluded, seed, event_id)
