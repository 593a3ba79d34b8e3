"""Errors the Maestro client raises, under the project's one root.

An answer's error body is ``{"detail": [{"field", "problem", "type"}]}``; a 4xx becomes
the class for its status, carrying the first item's ``field`` and ``problem``.
"""

from __future__ import annotations

from typing import Any

from core.errors import MaestroError


class ClientError(MaestroError):
    """Root of every error the client raises: Maestro answered badly or not at all."""

    cli_shows_kind = False  # the command line says the problem, not the class

    def __init__(self, message: str = "", *, field: str | None = None,
                 status: int | None = None, problem: str | None = None) -> None:
        super().__init__(message, field=field)
        #: the HTTP status of the answer (``None``: no answer)
        self.status = status
        #: the problem the answer named
        self.problem = problem


class ConnectionFailed(ClientError):
    """Maestro could not be reached (after the retries)."""


class Overloaded(ClientError):
    """Maestro kept answering ``503`` for every attempt."""


class Unauthorized(ClientError):
    """``401``: no API key, or a key the service does not accept."""


class RequestRejected(ClientError):
    """``400``/``422``: the request was invalid; :attr:`field` names the bad field."""


class NotFound(ClientError):
    """``404``: an event id (or path) the service does not know."""


class Conflict(ClientError):
    """``409``: e.g. a reward after the decision point's reward window."""


_BY_STATUS: dict[int, type[ClientError]] = {
    400: RequestRejected, 401: Unauthorized, 404: NotFound, 409: Conflict, 422: RequestRejected,
}


def from_answer(url: str, status: int, body: Any, text: str) -> ClientError:
    """The typed error for an error answer (``body``: its decoded JSON, or ``None``)."""
    field = problem = None
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        field, problem = detail[0].get("field"), detail[0].get("problem")
    elif isinstance(detail, str):
        problem = detail
    cls = _BY_STATUS.get(status, ClientError)
    what = f"{field}: {problem}" if field else (problem or text[:300])
    return cls(f"{url}: HTTP {status}: {what}", field=field, status=status, problem=problem)
