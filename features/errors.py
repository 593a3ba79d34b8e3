"""Errors raised by the feature layer, each knowing its HTTP status (mapped once, at the edge)."""

from __future__ import annotations


class FeatureStoreError(Exception):
    """Root of every error the feature layer raises."""

    status_code: int = 500
    field: str | None = None

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        if field is not None:
            self.field = field


class FeatureStoreUnavailable(FeatureStoreError):
    """The online store cannot be read (locked, missing, unreachable). Serving falls back."""

    status_code = 503


class InvalidEventError(FeatureStoreError, ValueError):
    """A malformed event for ``POST /events``."""

    status_code = 422


class WorkspaceError(FeatureStoreError):
    """The workspace (Feast repo, data) is missing or broken."""


class EventBacklogFull(FeatureStoreError):
    """The event writer's bounded queue is full (the store is slow or down): retry later."""

    status_code = 503
