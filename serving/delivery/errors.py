"""Errors of delivery, under the serving layer's root."""

from __future__ import annotations

from core.errors import EXIT_USAGE
from serving.errors import ServingError


class DeliveryConfigError(ServingError):
    """The ``destinations:`` of ``triggers.yaml`` is malformed (one line,
    ``file:line: problem``): ``maestro serve`` and ``maestro doctor`` stop at start-up."""

    http_status = 422
    exit_code = EXIT_USAGE
    field = "destinations"


class OutboxError(ServingError):
    """The delivery outbox cannot be read or written: a triggered decision is not accepted
    (the trigger fires again later rather than the delivery being lost)."""

    http_status = 503
    headers = {"Retry-After": "1"}


class UnknownDeliveryError(ServingError):
    """A dead letter named for re-queuing that the outbox does not hold."""

    http_status = 404
    exit_code = EXIT_USAGE
    field = "delivery_id"
