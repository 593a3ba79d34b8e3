"""Errors raised by the decision core.

One root (:class:`PolicyError`) with specific subclasses, each carrying the HTTP
status the serving edge maps it to (the pattern of Feast's and MLflow's error
hierarchies). Domain code raises these; only the edge turns them into HTTP or
CLI errors.
"""

from __future__ import annotations


class PolicyError(Exception):
    """Root of every error the decision core raises."""

    status_code: int = 500
    #: the request field the error is about, when there is one
    field: str | None = None

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        if field is not None:
            self.field = field


class InvalidInputError(PolicyError, ValueError):
    """Bad actions, context or features handed to the library."""

    status_code = 422


class UnknownChannelError(InvalidInputError):
    """An action names a channel Maestro does not know."""


class DuplicateActionError(InvalidInputError):
    """Two candidate actions share one id."""


class EmptyActionsError(InvalidInputError):
    """A decision was asked for with no candidate actions."""


class InvalidFeatureError(InvalidInputError):
    """A feature value is NaN, infinite or of an unsupported type."""


class UnknownDecisionPointError(InvalidInputError):
    """A decision point that the catalog does not declare."""


class UnknownPolicyError(PolicyError, KeyError):
    """A policy kind that the registry does not know."""

    status_code = 400

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidParameterError(PolicyError, ValueError):
    """A policy hyperparameter out of its allowed range."""

    status_code = 400


class CatalogError(PolicyError, ValueError):
    """The decision-point catalog YAML is malformed."""


class ModelLoadError(PolicyError):
    """Saved policy bytes that cannot be loaded."""


class PolicyFailure(PolicyError):
    """A policy failed while deciding (serving falls back, flagged degraded)."""
