"""Vowpal Wabbit's contextual-bandit labels from Maestro's rewards.

VW minimises cost; Maestro maximises reward. :func:`cost_from_reward` is the one place
the sign flips, shared by the per-example learner (:mod:`policies.vw.policy`) and bulk
learning (:mod:`policies.vw.batch`).
"""

from __future__ import annotations


def cost_from_reward(reward: float) -> float:
    """VW minimises cost; Maestro maximises reward. The one place the sign flips.

    Parameters
    ----------
    reward: float
        One round's observed reward.

    Returns
    -------
    float
        VW's cost, ``-reward``.
    """
    return -float(reward)
