"""The one error root: every Maestro error knows its HTTP status and CLI exit code, and
the HTTP edge answers each with that status in the contract's error shape."""

from __future__ import annotations

import asyncio
import importlib

import orjson
import pytest

from core.errors import EXIT_FAILURE, EXIT_USAGE, MaestroError

#: every module that defines Maestro errors (each package keeps its own)
ERROR_MODULES = (
    "policies.errors",
    "features.errors",
    "serving.errors",
    "simulator.errors",
    "training.errors",
    "cli.errors",
    "client.errors",
)


def _all_errors() -> list[type[MaestroError]]:
    for name in ERROR_MODULES:
        importlib.import_module(name)
    found: list[type[MaestroError]] = []
    todo = [MaestroError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(set(found), key=lambda c: f"{c.__module__}.{c.__qualname__}")


ERRORS = _all_errors()


def test_every_package_error_is_under_the_one_root() -> None:
    names = {c.__name__ for c in ERRORS}
    for package_root in ("PolicyError", "FeatureStoreError", "ServingError", "SimulatorError"):
        assert package_root in names
    for stray in (
        "TrainingDataError",
        "CommandError",
        "ExperimentConfigError",
        "EstimatorInputError",
        "HAProxyConfigChanged",
        "PolicyConformanceError",
    ):
        assert stray in names
    assert all(c.__module__ in (*ERROR_MODULES, "core.errors") for c in ERRORS)


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_each_error_knows_its_status_and_exit_code(cls: type[MaestroError]) -> None:
    assert isinstance(cls.http_status, int) and 400 <= cls.http_status < 600
    assert cls.exit_code in (EXIT_USAGE, EXIT_FAILURE)
    if issubclass(cls, ValueError):  # bad input is bad usage on the command line
        assert cls.exit_code == EXIT_USAGE
    exc = cls("what went wrong", field="some.field")
    assert exc.field == "some.field" and "what went wrong" in str(exc)
    assert exc.detail() == {"field": "some.field", "problem": str(exc), "type": cls.__name__}


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_the_http_edge_answers_each_error_with_its_status(cls: type[MaestroError]) -> None:
    from fastapi import FastAPI
    from starlette.testclient import TestClient

    from serving.api.errors import install_error_handlers

    app = FastAPI()
    install_error_handlers(app)

    @app.get("/fail")
    async def fail() -> None:
        raise cls("it failed")

    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/fail")
    assert answer.status_code == cls.http_status
    item = answer.json()["detail"][0]
    assert item["type"] == cls.__name__ and item["problem"] == str(cls("it failed"))
    for name, value in (cls.headers or {}).items():
        assert answer.headers[name] == value


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_the_asgi_fast_path_answers_each_error_with_its_status(cls: type[MaestroError]) -> None:
    from serving.api.direct import DirectRoutes

    def handler(_body: bytes) -> bytes:
        raise cls("it failed")

    async def inner(_scope: object, _receive: object, _send: object) -> None:
        raise AssertionError("the direct route answers itself")

    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    app = DirectRoutes(inner, routes={("POST", "/x"): handler})
    scope = {"type": "http", "method": "POST", "path": "/x", "headers": []}
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    assert sent[0]["status"] == cls.http_status
    assert orjson.loads(sent[1]["body"])["detail"][0]["type"] == cls.__name__  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_the_cli_edge_exits_with_each_errors_code(
    cls: type[MaestroError], capsys: pytest.CaptureFixture[str]
) -> None:
    from cli.commands import _run

    def body() -> None:
        raise cls("it failed")

    with pytest.raises(SystemExit) as info:
        _run(body)
    assert info.value.code == cls.exit_code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("maestro: error: ") and "it failed" in err


@pytest.mark.parametrize(
    ("module", "name", "line", "code"),
    [
        ("policies.errors", "InvalidInputError", "maestro: error: bad", 2),
        ("policies.errors", "ModelLoadError", "maestro: error: bad", 1),
        ("features.errors", "WorkspaceError", "maestro: error: bad", 1),
        ("features.errors", "InvalidEventError", "maestro: error: bad", 2),
        ("serving.errors", "ExperimentConfigError", "maestro: error: bad", 1),
        ("simulator.errors", "SimulatorError", "maestro: error: bad", 1),
        ("simulator.errors", "TargetError", "maestro: error: bad", 1),
        ("training.errors", "TrainingDataError", "maestro: error: bad", 1),
        ("cli.errors", "CommandError", "maestro: error: bad", 2),
    ],
)
def test_cli_lines_are_the_contracts(
    module: str, name: str, line: str, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli.commands import _run

    cls = getattr(importlib.import_module(module), name)

    def body() -> None:
        raise cls("bad")

    with pytest.raises(SystemExit) as info:
        _run(body)
    assert (capsys.readouterr().err, info.value.code) == (line + "\n", code)
