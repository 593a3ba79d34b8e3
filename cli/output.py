"""Where the command's log records, warnings and library chatter go.

The libraries Maestro drives talk a lot on the terminal: Python warnings (SQLAlchemy's
deprecations, MLflow's coloured hints), MLflow's, Alembic's, Feast's and Ray's log
lines, MLflow's printed registry messages. None of it is for the operator of a healthy
command, so by default:

- every log record of level INFO and above, from Maestro and from the libraries, and
  every Python warning (through :func:`logging.captureWarnings`), goes to the log file
  ``$MAESTRO_HOME/maestro.log``, opened only when the first record arrives (a command
  that logs nothing creates no file), ANSI colour codes stripped;
- the terminal (stderr) shows only Maestro's own records (its packages' loggers), such
  as a policy swap while serving.

``maestro --verbose`` shows every record on the terminal as well. The adapters of the
libraries that bypass logging hand their output to it (:mod:`training.tracking` for
MLflow's printed messages, :mod:`serving.engines.ray_serve` for Ray's own handlers);
``MLFLOW_CONFIGURE_LOGGING=false`` keeps MLflow from installing a terminal handler.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path

#: the file every record goes to, under the workspace
LOG_FILE = "maestro.log"
#: Maestro's packages: their records reach the terminal even when not verbose
OWN_PACKAGES = frozenset(
    {"cli", "core", "features", "policies", "serving", "simulator", "training"}
)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: libraries whose INFO is too much even for the file (SQL statements, Alembic's plugins):
#: the levels MLflow itself gives them when it configures logging
LIBRARY_LEVELS = {"sqlalchemy": logging.WARNING, "alembic": logging.WARNING}


class _Plain(logging.Formatter):
    """The file's format, without terminal colour codes."""

    def format(self, record: logging.LogRecord) -> str:
        return _ANSI.sub("", super().format(record))


class _Stderr(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is when a record arrives (a test
    runner swaps it; a handler holding the old stream would write to a closed one)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


class _LazyFile(logging.Handler):
    """Appends to ``$MAESTRO_HOME/maestro.log``, opened (and its directory made) at the
    first record only."""

    def __init__(self) -> None:
        super().__init__()
        self._file: logging.FileHandler | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self._file is None:
            path = log_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = logging.FileHandler(path, encoding="utf-8")
            self._file.setFormatter(self.formatter)
        self._file.emit(record)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        super().close()


def log_path() -> Path:
    """The log file: ``$MAESTRO_HOME/maestro.log`` (the settings' workspace)."""
    try:
        from serving.settings import get_settings

        home = get_settings().home
    except Exception:  # settings the command itself will refuse; the log still has a home
        home = Path(os.environ.get("MAESTRO_HOME", "maestro-data")).expanduser().absolute()
    return home / LOG_FILE


def _own(record: logging.LogRecord) -> bool:
    return record.name.partition(".")[0] in OWN_PACKAGES


class Routing:
    """The handlers :func:`route` installed, so :meth:`undo` can take them away again
    (the command ends; a test process goes on)."""

    def __init__(self, handlers: list[logging.Handler], level: int) -> None:
        self.handlers, self.level = handlers, level

    def undo(self) -> None:
        root = logging.getLogger()
        for handler in self.handlers:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(self.level)
        logging.captureWarnings(False)


def route(verbose: bool) -> Routing:
    """Send records and warnings to the log file, and to the terminal Maestro's own
    records (``verbose``: every record)."""
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
    root = logging.getLogger()
    to_file = _LazyFile()
    to_file.setFormatter(_Plain(_FORMAT))
    to_terminal = _Stderr()
    to_terminal.setFormatter(logging.Formatter(_FORMAT))
    if not verbose:
        to_terminal.addFilter(_own)
    routing = Routing([to_file, to_terminal], root.level)
    for handler in routing.handlers:
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name, level in LIBRARY_LEVELS.items():
        logging.getLogger(name).setLevel(level)
    logging.captureWarnings(True)
    return routing
