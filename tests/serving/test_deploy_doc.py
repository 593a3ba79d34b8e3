"""docs/deploy.md cannot drift from the code: the ``serveConfigV2`` of its RayService
manifest is what ``maestro serve --print-config`` prints for the settings the page's
command names (compared as parsed YAML, through the function the command calls), it
passes Ray's own schema, and the page shows that very command."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from serving.engines.ray_cluster import IMPORT_PATH, print_config
from serving.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
#: the environment and arguments of the page's `maestro serve --print-config` command
ENV = {
    "MAESTRO_HOME": "/srv/maestro",
    "MAESTRO_CONTACT_STORE": "redis",
    "MAESTRO_CONTACT_REDIS_URL": "redis://maestro-redis:6379/1",
    "MLFLOW_TRACKING_URI": "http://maestro-mlflow:5000",
    "MAESTRO_RAY_MAX_REPLICAS_PER_NODE": "1",
    "MAESTRO_ROLL_SECONDS": "5",
}
HOST, PORT, REPLICAS = "0.0.0.0", 8000, 2


def _manifest(text: str) -> list[dict]:
    """The Kubernetes objects of the page's one fenced YAML block holding a RayService."""
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "kind: RayService" in b]
    assert len(blocks) == 1, "docs/deploy.md must hold exactly one RayService manifest"
    return [doc for doc in yaml.safe_load_all(blocks[0]) if doc]


def _printed(monkeypatch: pytest.MonkeyPatch) -> str:
    """What ``--print-config`` prints under exactly :data:`ENV` (nothing else set)."""
    for name in list(os.environ):
        if name.startswith("MAESTRO_") or name in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS"):
            monkeypatch.delenv(name)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    return print_config(Settings(), HOST, PORT, REPLICAS)


def test_the_manifests_serve_config_is_what_print_config_prints(monkeypatch) -> None:
    from ray.serve.schema import ServeDeploySchema

    text = DOC.read_text()
    (service,) = [doc for doc in _manifest(text) if doc.get("kind") == "RayService"]
    embedded = service["spec"]["serveConfigV2"]
    assert isinstance(embedded, str), "serveConfigV2 is a string (a `|` block) in KubeRay"
    printed = _printed(monkeypatch)
    assert yaml.safe_load(embedded) == yaml.safe_load(printed)
    config = ServeDeploySchema.model_validate(yaml.safe_load(embedded))
    (app,) = config.applications
    assert app.import_path == IMPORT_PATH
    assert app.runtime_env["env_vars"]["MAESTRO_HOME"] == ENV["MAESTRO_HOME"]
    # the secrets the header names come from the pods' Secret, never from the config
    secrets = re.search(r"environment:\n# (.+)\.\n", printed).group(1).split(", ")
    assert secrets == ["MAESTRO_API_KEY", "MAESTRO_SECRET", "MAESTRO_STATE_URL",
                       "MAESTRO_FEAST_REGISTRY_URL"]
    (secret,) = [doc for doc in _manifest(text) if doc.get("kind") == "Secret"]
    assert set(secrets) <= set(secret["stringData"])
    assert not set(secrets) & set(app.runtime_env["env_vars"])


def test_the_page_shows_the_command_that_printed_it() -> None:
    command = re.search(r"```sh\n(MAESTRO_HOME=.*?--print-config.*?)\n```", DOC.read_text(), re.S)
    assert command is not None, "docs/deploy.md must show its --print-config command"
    words = command.group(1).replace("\\\n", " ").split()
    assigned = dict(w.split("=", 1) for w in words if "=" in w and not w.startswith("-"))
    assert assigned == ENV
    args = words[len(assigned):]
    assert args == ["maestro", "serve", "--print-config", "--host", HOST,
                    "--port", str(PORT), "--replicas", str(REPLICAS)]
