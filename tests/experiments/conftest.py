"""Shared fixtures of the experiment tests: a real MLflow SQLite store with a registered
challenger, and the live uvicorn server of ``tests/support/live_servers.py`` with an
experiments config, fed by the journey simulator over HTTP (session-scoped: started and fed
once)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_servers import LiveServer, LiveServers, live_settings

API_KEY = "exp-key-1234"
CUSTOMERS = 1000
STEPS = 900


@dataclass
class ExperimentServer:
    """The live server after the simulator's run, with the challenger it serves."""

    live: LiveServer
    challenger_version: str
    run: Any  # the simulator's RunLog
    steps: int = STEPS

    @property
    def base_url(self) -> str:
        return self.live.base_url

    @property
    def service(self) -> Any:
        return self.live.service

    @property
    def home(self) -> Path:
        return self.live.home

    @property
    def tracking_uri(self) -> str:
        return self.live.tracking_uri

    @property
    def client(self) -> httpx.Client:
        return self.live.client

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
def live_server(
    tmp_path_factory: pytest.TempPathFactory, live_servers: LiveServers
) -> ExperimentServer:
    """Champion, rules and a registered LinUCB challenger split ``cart_abandoned`` with a
    15% holdout; the simulator's customers are served (same generator, same seed)."""
    from client import MaestroClient
    from policies.catalog import load_catalog
    from serving.factory import memory_layer_from_synthetic
    from simulator.environment import EnvConfig, JourneyEnvironment
    from simulator.http_client import run_target
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
    settings = live_settings(home, mlflow_tracking_uri=uri, api_key=API_KEY)
    live = live_servers.start(
        settings, memory_layer_from_synthetic(CUSTOMERS, 7), api_key=API_KEY, client_timeout=30
    )
    env = JourneyEnvironment(EnvConfig(customers=CUSTOMERS, customer_seed=7))
    with MaestroClient(live.base_url, api_key=API_KEY) as sim_client:
        run = run_target(sim_client, env, STEPS, seed=5)
    return ExperimentServer(live, version, run)
