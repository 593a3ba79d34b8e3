"""Errors raised by the journey simulator, each knowing its HTTP status and field.

One root (:class:`SimulatorError`); the CLI turns them into one-line messages.
"""

from __future__ import annotations


class SimulatorError(Exception):
    """Root of every error the simulator raises."""

    status_code: int = 500
    field: str | None = None

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        if field is not None:
            self.field = field


class InvalidSimulationConfig(SimulatorError, ValueError):
    """A simulator setting out of range (customers, steps, costs, unknown decision point)."""

    status_code = 400


class InvalidDecision(SimulatorError, ValueError):
    """A decision handed to :meth:`Environment.step` that does not fit the observation."""

    status_code = 422


class NotReset(SimulatorError, RuntimeError):
    """``step`` called before ``reset``."""


class TargetError(SimulatorError, RuntimeError):
    """The Maestro under test (``--target``) answered badly or could not be reached."""

    status_code = 502
