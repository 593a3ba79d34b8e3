"""Errors raised by the journey simulator, under the project's one root.

The CLI turns them into one-line messages and exit codes (``exit_code``).
"""

from __future__ import annotations

from core.errors import EXIT_USAGE, MaestroError


class SimulatorError(MaestroError):
    """Root of every error the simulator raises (raised itself when a run cannot go on)."""

    cli_shows_kind = False  # the command line says the problem, not the class


class InvalidSimulationConfig(SimulatorError, ValueError):
    """A simulator setting out of range (customers, steps, costs, unknown decision point)."""

    http_status = 400
    exit_code = EXIT_USAGE
    cli_shows_kind = False


class InvalidDecision(SimulatorError, ValueError):
    """A decision handed to :meth:`Environment.step` that does not fit the observation."""

    http_status = 422
    exit_code = EXIT_USAGE
    cli_shows_kind = False


class NotReset(SimulatorError, RuntimeError):
    """``step`` called before ``reset``."""

    cli_shows_kind = False


class TargetError(SimulatorError, RuntimeError):
    """The Maestro under test (``--target``) answered badly or could not be reached."""

    http_status = 502
    cli_shows_kind = False
