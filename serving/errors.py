"""Errors the serving layer raises, under the project's one root.

The HTTP app's single exception handler answers every :class:`core.errors.MaestroError`
from its ``http_status``, ``field`` and ``headers``; service code never raises
``HTTPException``. The edge's own refusals (a missing key, a body too large, overload)
are answered from instances of these classes too, so the error's ``type`` in the body is
always a class name.
"""

from __future__ import annotations

from core.errors import EXIT_USAGE, MaestroError
from policies.errors import ConditionError


class ServingError(MaestroError):
    """Root of every error the serving layer raises."""

    cli_shows_kind = False  # the command line says the problem, not the class


class UnknownEventError(ServingError):
    """A reward for an event id this workspace never issued (signature check)."""

    http_status = 404
    exit_code = EXIT_USAGE
    field = "event_id"


class LateRewardError(ServingError):
    """A reward after the decision point's reward window: kept, flagged late, never learned."""

    http_status = 409
    exit_code = EXIT_USAGE
    field = "event_id"


class UnauthorizedError(ServingError):
    """Missing or wrong ``Authorization: Bearer <key>``."""

    http_status = 401
    exit_code = EXIT_USAGE
    field = "authorization"
    headers = {"WWW-Authenticate": "Bearer"}


class PayloadTooLargeError(ServingError):
    """A request body over the size limit (the contract answers bad input, this included, 422)."""

    http_status = 422
    exit_code = EXIT_USAGE
    field = "body"


class OverloadedError(ServingError):
    """The server refuses a request it cannot serve in time (admission control, HAProxy)."""

    http_status = 503
    headers = {"Retry-After": "1"}


class EventLogError(ServingError):
    """The event log cannot be written: the decision is not answered (nothing unlogged)."""

    http_status = 503
    headers = {"Retry-After": "1"}


class ExperimentConfigError(ServingError):
    """The experiments file is malformed or names something that does not exist."""

    http_status = 422
    field = "experiments"


class HAProxyConfigChanged(ServingError, RuntimeError):
    """Ray's generated HAProxy config no longer has the shape the shedding rewrite expects."""

    cli_shows_kind = False


class CannotListenError(ServingError):
    """``maestro serve`` on an address it cannot listen on (taken, or not this machine's)."""

    exit_code = EXIT_USAGE
    cli_shows_kind = False


class SettingsDocError(ServingError):
    """README has no (or a broken) settings block, or a settings field has no description."""


class ContactStoreError(ServingError):
    """The contact history or budget store cannot be read or written (or stays contended):
    the decision is not answered, since caps and budgets could not be held."""

    http_status = 503
    headers = {"Retry-After": "1"}


class SharedStateError(ServingError):
    """The networked store of the replicas' shared state cannot be reached or used
    (``MAESTRO_STATE_URL``): the request is refused, nothing is half-written."""

    http_status = 503
    headers = {"Retry-After": "1"}
    field = "MAESTRO_STATE_URL"


class IdentityStoreError(ServingError):
    """The identity links (anonymous id → customer id) cannot be read or written: the
    request is not answered, since it could not be attributed to the right profile."""

    http_status = 503
    headers = {"Retry-After": "1"}


class TriggerConfigError(ConditionError):
    """A trigger of ``triggers.yaml`` that cannot be loaded: ``<file>:<line>: <problem>``
    (``maestro serve`` and ``maestro doctor`` exit 2 before starting)."""


class TimerStoreError(ServingError):
    """The trigger timers' store failed (SQLite or Redis)."""

    http_status = 503


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
