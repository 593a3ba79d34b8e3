"""Errors of the command line itself, under the project's one root."""

from __future__ import annotations

from core.errors import EXIT_USAGE, MaestroError


class CommandError(MaestroError, ValueError):
    """A user mistake on the command line (exit 2)."""

    http_status = 400
    exit_code = EXIT_USAGE
