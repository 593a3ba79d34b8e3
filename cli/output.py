"""Where the command's log records, warnings and library chatter go.

The libraries Maestro drives talk a lot on the terminal: Python warnings (SQLAlchemy's
deprecations, MLflow's coloured hints), MLflow's, Alembic's, Feast's and Ray's log
lines, MLflow's printed registry messages. None of it is for the operator of a healthy
command, so by default:

- every log record of level INFO and above, from Maestro and from the libraries, and
  every Python warning (through :func:`logging.captureWarnings`), goes to the log file
  ``$MAESTRO_HOME/maestro.log``, ANSI colour codes stripped, opened only when a record
  arrives and the workspace directory exists (a command that logs nothing creates no
  file; one run outside any workspace creates no directory);
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
#: records kept while the workspace does not exist yet
PENDING = 10_000
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
    """Appends to ``$MAESTRO_HOME/maestro.log`` once the workspace directory exists,
    opening it at the first record; until then records wait (at most
    :data:`PENDING` of them): ``maestro init`` makes the workspace after its first
    records, and a command run outside any workspace (``maestro simulate``) leaves no
    directory behind just for its log."""

    def __init__(self) -> None:
        super().__init__()
        self._file: logging.FileHandler | None = None
        self._pending: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if self._file is None:
            path = log_path()
            if not path.parent.is_dir():
                if len(self._pending) < PENDING:
                    self._pending.append(record)
                return
            self._file = logging.FileHandler(path, encoding="utf-8")
            self._file.setFormatter(self.formatter)
        for waiting in self._pending:
            self._file.emit(waiting)
        self._pending.clear()
        self._file.emit(record)

    def close(self) -> None:
        if self._pending and log_path().parent.is_dir():
            self.emit(self._pending.pop())  # the workspace appeared after the last record
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
