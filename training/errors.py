"""Errors raised by the training side (log reading, estimators), under the project's one root."""

from __future__ import annotations

from core.errors import MaestroError
from policies.errors import InvalidInputError


class TrainingDataError(MaestroError, RuntimeError):
    """No usable training data (empty or entirely corrupt logs)."""

    http_status = 422
    field = "logs"


class EstimatorInputError(InvalidInputError):
    """Bad inputs to an estimator: NaN, probabilities out of range, mismatched lengths."""


class MissingRewardModelError(EstimatorInputError):
    """DM, DR and Switch-DR need ``q_logged`` and ``q_target``."""
