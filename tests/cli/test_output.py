"""Where log records and warnings go (``cli.output``), in process: the log file under the
workspace, and on the terminal Maestro's own records (every record with ``verbose``)."""

from __future__ import annotations

import logging
import warnings

import pytest

from cli.output import LOG_FILE, route
from serving.settings import get_settings


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "ws"
    monkeypatch.setenv("MAESTRO_HOME", str(home))
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_records_go_to_the_file_and_maestros_own_to_the_terminal(home, capsys, verbose) -> None:
    home.mkdir()
    routing = route(verbose)
    try:
        logging.getLogger("mlflow.store").info("\x1b[33mlibrary chatter\x1b[0m")
        logging.getLogger("serving.service.policy_store").info("policy swapped")
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("a library's deprecation", DeprecationWarning, stacklevel=1)
    finally:
        routing.undo()
    err = capsys.readouterr().err
    assert "policy swapped" in err
    assert ("library chatter" in err) is verbose
    assert ("DeprecationWarning" in err) is verbose
    log = (home / LOG_FILE).read_text()
    assert "library chatter" in log and "\x1b[" not in log
    assert "policy swapped" in log and "DeprecationWarning: a library's deprecation" in log
    # undone: the process's logging is as it was before the command
    assert not set(routing.handlers) & set(logging.getLogger().handlers)


def test_no_workspace_no_directory_until_it_exists(home) -> None:
    routing = route(False)
    try:
        logging.getLogger("feast").warning("before the workspace")
        assert not home.exists()  # a record does not make the workspace
        home.mkdir()
        logging.getLogger("feast").warning("after it")
    finally:
        routing.undo()
    lines = (home / LOG_FILE).read_text().splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == ["before the workspace", "after it"]


def test_a_command_outside_any_workspace_leaves_nothing(home) -> None:
    routing = route(False)
    logging.getLogger("matplotlib").warning("a record with nowhere to go")
    routing.undo()
    assert not home.exists()
