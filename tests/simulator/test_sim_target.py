"""``--target``: the simulator drives a live Maestro over its real HTTP API.

The server is the real serving stack (``serving.api.app.create_app`` around a
``DecisionService`` with the in-memory feature layer holding the same synthetic
customers, a real MLflow SQLite store and event log under ``tmp_path``), served by
uvicorn on 127.0.0.1 in a thread of the test process.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from client import ConnectionFailed, MaestroClient, Overloaded, Unauthorized
from policies.registry import POLICY_KINDS
from simulator.environment import EnvConfig, JourneyEnvironment
from simulator.http_client import run_target

KEY = "sim-test-key-1234"
CUSTOMERS = 150


@dataclass
class Live:
    url: str
    home: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    import uvicorn

    from serving.api.app import create_app
    from serving.factory import build_service, memory_layer_from_synthetic
    from serving.settings import Settings

    home = tmp_path_factory.mktemp("maestro-home")
    settings = Settings(home=home, mlflow_tracking_uri=f"sqlite:///{home / 'mlflow.db'}",
                        api_key=KEY, feature_source="memory", roll_seconds=0.5)
    service = build_service(settings, memory_layer_from_synthetic(CUSTOMERS, seed=7))
    app = create_app(service, api_keys=settings.api_keys)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        pytest.fail("the Maestro under test did not come up")
    yield Live(url, home)
    server.should_exit = True
    thread.join(timeout=30)


def test_run_target_drives_decide_events_and_reward(live: Live) -> None:
    env = JourneyEnvironment(EnvConfig(customers=CUSTOMERS))
    with MaestroClient(live.url, KEY) as client:
        log = run_target(client, env, 120, seed=3)
        assert len(log) == 120
        assert log.policy  # the service says which policy answered
        assert ((log.probabilities > 0) & (log.probabilities <= 1)).all()
        negative = int((log.regret < -1e-12).sum())
        assert negative <= log.params["ineligible_in_simulator"]  # clocks differ, see run_target
        # the service checks event ids: one it never issued is refused
        resp = client._http.post("/reward", json={"event_id": "nope", "reward": 1.0})
        assert resp.status_code in (404, 422)


def test_target_without_the_api_key_is_refused(live: Live) -> None:
    env = JourneyEnvironment(EnvConfig(customers=CUSTOMERS))
    with MaestroClient(live.url) as client, pytest.raises(Unauthorized, match="401"):
        run_target(client, env, 5, seed=0)


def test_target_that_is_down_is_a_clear_error() -> None:
    env = JourneyEnvironment(EnvConfig(customers=10))
    with MaestroClient(f"http://127.0.0.1:{_free_port()}", timeout=1.0) as client, \
            pytest.raises(ConnectionFailed, match=r"127\.0\.0\.1"):
        run_target(client, env, 1, seed=0)


def test_cli_simulate_with_target_writes_the_report(live: Live, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from cli.main import cli

    monkeypatch.setenv("MAESTRO_API_KEY", KEY)
    out = tmp_path / "sim"
    result = CliRunner().invoke(cli, ["simulate", "--target", live.url, "--steps", "60",
                                      "--customers", str(CUSTOMERS), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["mode"] == "target"
    (kind, summary), = report["policies"].items()
    assert kind in POLICY_KINDS  # the service names the policy that answered
    assert summary["steps"] == 60 and "mean_reward" in summary and "regret" in summary
    assert (out / "report.html").exists()


def test_cli_simulate_with_unreachable_target_fails_with_one_line(tmp_path: Path) -> None:
    from cli.main import cli

    url = f"http://127.0.0.1:{_free_port()}"
    result = CliRunner().invoke(cli, ["simulate", "--target", url, "--steps", "3",
                                      "--customers", "10", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert lines == [lines[0]] and lines[0].startswith("maestro: error:") and url in lines[0]
    assert "Traceback" not in result.output
    assert "Error:" not in lines[0] and "Failed:" not in lines[0]  # the problem, not a class


def test_client_retries_an_overload_refusal_after_retry_after() -> None:
    """A 503 is a refusal before any work (contract): the client waits and retries; a
    service that keeps refusing is reported, not retried forever."""
    import httpx

    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] <= 2:
            return httpx.Response(503, headers={"Retry-After": "1"}, json={"detail": []})
        return httpx.Response(200, json={"event_id": "e", "accepted": True})

    with MaestroClient("http://127.0.0.1:9", transport=httpx.MockTransport(handler)) as client:
        client.max_wait = 0.0
        assert client.reward("e", 1.0).accepted is True
        assert client.refused == 2 and calls["n"] == 3

    def always(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": "1"}, json={"detail": []})

    with MaestroClient("http://127.0.0.1:9", transport=httpx.MockTransport(always)) as client:
        client.max_wait = 0.0
        with pytest.raises(Overloaded, match="503"):
            client.reward("e", 1.0)
        assert client.refused == client.attempts - 1
