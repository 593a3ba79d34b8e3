"""Errors raised by the decision core, under the project's one root.

:class:`PolicyError` is the decision core's branch of :class:`core.errors.MaestroError`;
each subclass carries its HTTP status and CLI exit code, which only the edges read.
"""

from __future__ import annotations

from core.errors import EXIT_USAGE, MaestroError


class PolicyError(MaestroError):
    """Root of every error the decision core raises."""


class InvalidInputError(PolicyError, ValueError):
    """Bad actions, context or features handed to the library."""

    http_status = 422
    exit_code = EXIT_USAGE


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
    """A policy kind that the registry does not know (in saved bytes: a failure, exit 1)."""

    http_status = 400

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidParameterError(PolicyError, ValueError):
    """A policy hyperparameter out of its allowed range."""

    http_status = 400
    exit_code = EXIT_USAGE


class OutcomeValueError(InvalidInputError):
    """An outcome event whose properties cannot give its reward (a property the reward
    reads is missing, or the result is not a finite number)."""


class CatalogError(PolicyError, ValueError):
    """The decision-point catalog YAML is malformed."""

    exit_code = EXIT_USAGE


class ModelLoadError(PolicyError):
    """Saved policy bytes that cannot be loaded."""


class PolicyConformanceError(PolicyError, AssertionError):
    """A policy broke one of the promises every policy makes (``policies.checks.check_policy``)."""


class ConditionError(CatalogError):
    """A condition that cannot be loaded: ``<file>:<line>: <problem>`` (exit 2)."""
