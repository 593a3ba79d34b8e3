"""Errors raised by the feature layer, under the project's one root (mapped once, at each edge)."""

from __future__ import annotations

from core.errors import EXIT_USAGE, MaestroError


class FeatureStoreError(MaestroError):
    """Root of every error the feature layer raises."""

    cli_shows_kind = False  # the command line says the problem, not the class


class FeatureStoreUnavailable(FeatureStoreError):
    """The online store cannot be read (locked, missing, unreachable). Serving falls back."""

    http_status = 503


class InvalidEventError(FeatureStoreError, ValueError):
    """A malformed event for ``POST /events``."""

    http_status = 422
    exit_code = EXIT_USAGE
    cli_shows_kind = False


class WorkspaceError(FeatureStoreError):
    """The workspace (Feast repo, data) is missing or broken."""


class EventBacklogFull(FeatureStoreError):
    """The event writer's bounded queue is full (the store is slow or down): retry later."""

    http_status = 503


class UnknownExample(WorkspaceError):
    """``maestro init --example`` with a name no example has: exit 2."""

    http_status = 400
    exit_code = EXIT_USAGE


class SqlSourceError(FeatureStoreError):
    """The source's database cannot be reached or read (exit 1)."""


class SourceLoadError(FeatureStoreError, ValueError):
    """A source that cannot be read as declared (missing file or column): exit 2."""

    http_status = 400
    exit_code = EXIT_USAGE


class DeclarationError(FeatureStoreError, ValueError):
    """A bad ``features.yaml``: the message is ``<file>:<line>: <problem>`` (exit 2)."""

    http_status = 400
    exit_code = EXIT_USAGE
