"""``maestro serve --print-config``: the Ray Serve config ``serve deploy`` takes (and
KubeRay embeds as ``serveConfigV2``) passes Ray's own schema, carries the workspace's
settings but never a secret, and its ``import_path`` builds the app. ``--address`` with
uvicorn is refused with one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _maestro(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # only this test's settings: an earlier test's in-process MLflow use leaves
    # MLFLOW_TRACKING_URI in os.environ (mlflow.set_tracking_uri exports it)
    inherited = {
        k: v for k, v in os.environ.items()
        if not k.startswith("MAESTRO_") and k != "MLFLOW_TRACKING_URI"
    }
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT, env={**inherited, **env}, capture_output=True, text=True, timeout=120,
    )


def test_the_printed_config_is_a_valid_serve_config_without_secrets(tmp_path: Path) -> None:
    from ray.serve.schema import ServeDeploySchema

    done = _maestro(
        "serve", "--print-config", "--replicas", "2", "--host", "0.0.0.0", "--port", "8100",
        MAESTRO_HOME=str(tmp_path), MAESTRO_STATE_URL="postgresql://u:hunter2@db/maestro",
        MAESTRO_API_KEY="k-secret-1", MAESTRO_RAY_MAX_REPLICAS_PER_NODE="1",
        MAESTRO_REWARD_MODE="sum",
    )
    assert done.returncode == 0, done.stderr
    assert "hunter2" not in done.stdout and "k-secret-1" not in done.stdout
    config = ServeDeploySchema.model_validate(yaml.safe_load(done.stdout))
    assert config.http_options.port == 8100 and config.proxy_location == "EveryNode"
    (app,) = config.applications
    assert app.import_path == "serving.engines.ray_cluster:app_builder"
    assert app.args == {"replicas": 2}
    assert app.runtime_env["env_vars"] == {
        "MAESTRO_HOME": str(tmp_path),
        "MAESTRO_RAY_MAX_REPLICAS_PER_NODE": "1",
        "MAESTRO_REWARD_MODE": "sum",
    }
    (deployment,) = app.deployments
    assert deployment.name == "Maestro" and deployment.num_replicas == 2
    assert deployment.max_replicas_per_node == 1


def test_the_import_path_builds_the_app_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    from ray.serve import Application

    from serving.engines.ray_cluster import app_builder
    from serving.settings import get_settings

    monkeypatch.setenv("MAESTRO_HOME", str(tmp_path))
    monkeypatch.setenv("MAESTRO_RAY_MAX_REPLICAS_PER_NODE", "1")
    get_settings.cache_clear()
    try:
        app = app_builder({"replicas": 3})
    finally:
        get_settings.cache_clear()
    assert isinstance(app, Application)
    deployment = app._bound_deployment  # the one deployment, as the config names it
    assert deployment.name == "Maestro" and deployment.num_replicas == 3
    assert deployment._replica_config.max_replicas_per_node == 1


def test_address_is_refused_for_uvicorn_and_bad_state_urls_in_one_line(tmp_path: Path) -> None:
    done = _maestro("serve", "--engine", "uvicorn", "--address", "127.0.0.1:6379",
                    MAESTRO_HOME=str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "maestro: error: --address applies to --engine ray; uvicorn runs one process"
    )
    done = _maestro("serve", "--print-config", MAESTRO_HOME=str(tmp_path),
                    MAESTRO_STATE_URL="redis://127.0.0.1:1")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert done.stderr == "maestro: error: MAESTRO_STATE_URL: must be a postgresql:// URL\n"
