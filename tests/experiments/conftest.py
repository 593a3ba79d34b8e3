"""Shared fixtures of the experiment tests: a real MLflow SQLite store with a registered
challenger, and a live uvicorn server on 127.0.0.1 with an experiments config, fed by
the journey simulator over HTTP (session-scoped: started and fed once)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

os.environ.setdefault("FEAST_USAGE", "False")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")

API_KEY = "exp-key-1234"
CUSTOMERS = 1000
STEPS = 900


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not come up in {timeout} s")


@dataclass
class LiveServer:
    base_url: str
    service: Any
    home: Path
    tracking_uri: str
    client: httpx.Client
    challenger_version: str
    run: Any  # the simulator's RunLog
    steps: int = STEPS

    def wait_rolled(self, min_decisions: int | None = None, timeout: float = 20.0
                    ) -> dict[str, Any]:
        """Poll ``/experiments`` until the rolled logs hold ``min_decisions`` decisions."""
        want = self.steps if min_decisions is None else min_decisions
        deadline = time.monotonic() + timeout
        body: dict[str, Any] = {}
        last = -1
        while time.monotonic() < deadline:
            body = self.client.get("/experiments").json()
            total = sum(
                v["decisions"] for dp in body["decision_points"].values() for v in dp["variants"]
            )
            if total >= want and total == last:  # stable across two polls a roll apart
                return body
            last = total
            time.sleep(1.2)
        raise AssertionError(f"/experiments never reached {want} decisions: {body}")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    import uvicorn

    from policies.catalog import load_catalog
    from serving.api.app import create_app
    from serving.engines.runner import uvicorn_config
    from serving.factory import build_service, memory_layer_from_synthetic
    from serving.settings import Settings
    from simulator.environment import EnvConfig, JourneyEnvironment
    from simulator.http_client import MaestroClient, run_target
    from simulator.run import build_policy
    from training.tracking import register_policy

    home = tmp_path_factory.mktemp("exp-home")
    uri = f"sqlite:///{tmp_path_factory.mktemp('exp-mlflow') / 'mlflow.db'}"
    catalog = load_catalog(None)
    challenger = build_policy("linucb", catalog, 3)
    _, version = register_policy(
        challenger.save(), "cart_abandoned", uri, kind="linucb", run_name="challenger"
    )
    (home / "experiments.yaml").write_text(
        "salt: e2e\n"
        "holdout: 0.15\n"
        "decision_points:\n"
        "  cart_abandoned:\n"
        "    variants:\n"
        "      champion: 0.5\n"
        "      rules: 0.25\n"
        f"      challenger: {{share: 0.25, version: {version}}}\n"
    )
    settings = Settings(
        home=home,
        mlflow_tracking_uri=uri,
        api_key=API_KEY,
        poll_seconds=0.5,
        roll_seconds=0.5,
        feature_source="memory",
    )
    # the served customers are the simulator's (same generator, same seed)
    service = build_service(settings, memory_layer_from_synthetic(CUSTOMERS, 7))
    app = create_app(service, api_keys=settings.api_keys, max_body_bytes=settings.max_body_bytes)
    port = _free_port()
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    _wait(f"{base}/healthz")
    env = JourneyEnvironment(EnvConfig(customers=CUSTOMERS, customer_seed=7))
    with MaestroClient(base, api_key=API_KEY) as sim_client:
        run = run_target(sim_client, env, STEPS, seed=5)
    client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {API_KEY}"},
                          timeout=30)
    try:
        yield LiveServer(base, service, home, uri, client, version, run)
    finally:
        client.close()
        server.should_exit = True
        thread.join(timeout=30)
