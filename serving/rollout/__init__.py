"""Staged rollout in service: shadow, canary and watched champions, their guardrails and
automatic rollback (see :mod:`serving.rollout.rollout`)."""
