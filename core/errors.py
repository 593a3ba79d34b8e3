"""The one root of every error Maestro raises, and what each edge makes of it.

Each package keeps its own subclasses in its own ``errors.py``; every class says, as
class attributes, the HTTP status the API answers with (``http_status``), the exit code
of the ``maestro`` command (``exit_code``: 2 for bad usage or input, 1 for a failure)
and the request field it is about (``field``). The HTTP app and the command line each
map :class:`MaestroError` once, from these attributes (Feast's and MLflow's pattern);
domain code raises and never builds responses or exit codes itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

#: exit code of the ``maestro`` command for bad usage or bad input
EXIT_USAGE = 2
#: exit code of the ``maestro`` command for a failure
EXIT_FAILURE = 1


class MaestroError(Exception):
    """Root of every error Maestro raises."""

    #: the HTTP status the API answers with
    http_status: ClassVar[int] = 500
    #: the ``maestro`` command's exit code
    exit_code: ClassVar[int] = EXIT_FAILURE
    #: headers the HTTP answer carries (``Retry-After``, ``WWW-Authenticate``)
    headers: ClassVar[Mapping[str, str] | None] = None
    #: whether the command line's one-line message starts with the class name
    #: (failures of the feature store, the server and the simulator's own loop do)
    cli_shows_kind: ClassVar[bool] = False
    #: the request field the error is about, when there is one
    field: str | None = None

    def __init__(self, message: str = "", *, field: str | None = None) -> None:
        super().__init__(message)
        if field is not None:
            self.field = field

    def detail(self) -> dict[str, Any]:
        """One item of the contract's error body ``{"detail": [{"field", "problem", "type"}]}``."""
        return {"field": self.field, "problem": str(self), "type": type(self).__name__}

    def cli_message(self) -> str:
        """The one line the ``maestro`` command prints after ``maestro: error:``."""
        return f"{type(self).__name__}: {self}" if self.cli_shows_kind else str(self)
