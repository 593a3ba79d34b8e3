"""Maestro on an existing Ray cluster: ``maestro serve --engine ray --address ADDR``
deploys the app into it, and ``maestro serve --print-config`` prints the Ray Serve config
(the YAML ``serve deploy`` takes, and KubeRay's RayService embeds as ``serveConfigV2``)
whose ``import_path`` is :func:`app_builder`.

The app in the cluster is the one :func:`serving.engines.ray_serve.build_application`
builds for the private local cluster. Its replicas run wherever Ray places them, so
everything they share must be reachable from every node: the workspace path (a shared
mount), the shared state (``MAESTRO_STATE_URL``), the online store (Redis), MLflow
(``MLFLOW_TRACKING_URI``). Serve runs detached: the command returns once the app is
deployed, and the app keeps serving until ``serve shutdown`` or a new deploy.

Secrets (:data:`serving.engines.ray_serve.SECRET_FIELDS`) never appear in the printed
config: each node's environment provides them (a Kubernetes secret in KubeRay); the
config carries the other settings that differ from their defaults.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, Field

from serving.engines.ray_serve import (
    APP_NAME,
    DEPLOYMENT_NAME,
    SECRET_FIELDS,
    build_application,
)
from serving.settings import Settings, get_settings
from serving.state.select import describe

IMPORT_PATH = "serving.engines.ray_cluster:app_builder"
#: settings that only the command deploying the app uses
_LOCAL_FIELDS = ("ray_address", "ray_temp_dir")


class AppArgs(BaseModel):
    """The ``args`` of the config's application (checked when the cluster builds it)."""

    replicas: int = Field(default=1, ge=1, le=64)


def app_builder(args: dict[str, Any]) -> Any:
    """The Ray Serve application builder ``serve deploy`` imports: the settings are read
    from the environment of the cluster's build task (the config's ``runtime_env`` plus
    the node's own, which holds the secrets)."""
    return build_application(get_settings(), AppArgs.model_validate(args).replicas)


def _env_name(field: str) -> str:
    return "MLFLOW_TRACKING_URI" if field == "mlflow_tracking_uri" else f"MAESTRO_{field.upper()}"


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that rebuilds ``settings`` on a node: the workspace and every
    setting given explicitly, secrets and deploy-only settings left out."""
    values = settings.model_dump(exclude_unset=True)
    skip = {*SECRET_FIELDS, *_LOCAL_FIELDS, "home"}
    env = {_env_name(k): _env_value(v) for k, v in sorted(values.items()) if k not in skip}
    return {"MAESTRO_HOME": str(settings.home), **env}


def serve_config(settings: Settings, host: str, port: int, replicas: int) -> dict[str, Any]:
    """The Ray Serve config (``ServeDeploySchema``) of the app with ``replicas`` replicas."""
    deployment: dict[str, Any] = {"name": DEPLOYMENT_NAME, "num_replicas": replicas}
    if settings.ray_max_replicas_per_node is not None:
        deployment["max_replicas_per_node"] = settings.ray_max_replicas_per_node
    return {
        "proxy_location": settings.ray_proxy_location,
        "http_options": {"host": host, "port": port},
        "applications": [
            {
                "name": APP_NAME,
                "route_prefix": "/",
                "import_path": IMPORT_PATH,
                "args": {"replicas": replicas},
                "runtime_env": {"env_vars": settings_env(settings)},
                "deployments": [deployment],
            }
        ],
    }


def print_config(settings: Settings, host: str, port: int, replicas: int) -> str:
    """``maestro serve --print-config``: the config as YAML, with a header naming the
    secrets each node's environment must hold."""
    import yaml

    secrets = ", ".join(_env_name(f) for f in SECRET_FIELDS)
    header = (
        "# Ray Serve config of Maestro (`serve deploy` it, or embed it as KubeRay's\n"
        "# serveConfigV2). Secrets come from each node's environment:\n"
        f"# {secrets}.\n"
    )
    body = yaml.safe_dump(serve_config(settings, host, port, replicas), sort_keys=False)
    return header + body


def deploy_to_cluster(settings: Settings, host: str, port: int, replicas: int) -> None:
    """Deploy the app into the cluster at ``settings.ray_address`` and return (Serve keeps
    it running); its proxies listen on ``host:port`` of the nodes
    (``MAESTRO_RAY_PROXY_LOCATION``)."""
    import ray
    from ray import serve

    address = settings.ray_address
    try:
        ray.init(
            address=address,
            logging_level=logging.WARNING,
            log_to_driver=False,
            configure_logging=True,
        )
    except ConnectionError as exc:
        raise ConnectionError(f"cannot join the Ray cluster at {address}: {exc}") from None
    try:
        serve.start(
            http_options={"host": host, "port": port},
            proxy_location=settings.ray_proxy_location,
            logging_config={"log_level": "WARNING"},
        )
        serve.run(
            build_application(settings, replicas), name=APP_NAME, route_prefix="/",
            blocking=False,
        )
        nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
        print(
            f"maestro: deployed to the Ray cluster at {address} ({replicas} replica(s), "
            f"{nodes} node(s)); HTTP on port {port} of "
            f"{'every node' if settings.ray_proxy_location == 'EveryNode' else 'the head'};"
            f" workspace {settings.home}; shared state {describe(settings)}",
            flush=True,
        )
    finally:
        ray.shutdown()

