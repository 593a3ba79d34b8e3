"""Errors the serving layer raises, each knowing its HTTP status and field.

Together with :class:`policies.errors.PolicyError` and
:class:`features.errors.FeatureStoreError` these are the roots that the app's single
exception handler maps to JSON responses; service code never raises ``HTTPException``.
"""

from __future__ import annotations


class ServingError(Exception):
    """Root of every error the serving layer raises."""

    status_code: int = 500
    field: str | None = None
    headers: dict[str, str] | None = None

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        if field is not None:
            self.field = field


class UnknownEventError(ServingError):
    """A reward for an event id this workspace never issued (signature check)."""

    status_code = 404
    field = "event_id"


class LateRewardError(ServingError):
    """A reward after the decision point's reward window: kept, flagged late, never learned."""

    status_code = 409
    field = "event_id"


class UnauthorizedError(ServingError):
    """Missing or wrong ``Authorization: Bearer <key>``."""

    status_code = 401
    field = "authorization"
    headers = {"WWW-Authenticate": "Bearer"}


class PayloadTooLargeError(ServingError):
    status_code = 422  # the contract: bad input, bodies over 64 KiB included, is 422
    field = "body"


class InvalidRequestError(ServingError, ValueError):
    """A request that parses but breaks a serving bound."""

    status_code = 422


class OverloadedError(ServingError):
    status_code = 503
    headers = {"Retry-After": "1"}


class EventLogError(ServingError):
    """The event log cannot be written: the decision is not answered (nothing unlogged)."""

    status_code = 503
    headers = {"Retry-After": "1"}


class PolicyStoreError(ServingError):
    """The model registry cannot be read or holds a broken champion (at start: fail loudly)."""
