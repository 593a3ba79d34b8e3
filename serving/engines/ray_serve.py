"""The Ray Serve engine: the same FastAPI app, wrapped with ``@serve.ingress`` in ONE
deployment: a second deployment behind a handle would add a hop to every request
(BENCHMARKS.md, "Serving: notes").

- each replica builds its own
  :class:`~serving.service.decision_service.DecisionService` from the settings (its own
  event-log spool; reward idempotency and event-id signatures are shared through the
  workspace), inside the replica, through ``serve.ingress(builder)``;
- overload is shed in HAProxy, before it reaches a replica (:mod:`serving.engines.haproxy_shed`:
  at most ``MAESTRO_RAY_REPLICA_MAXCONN`` (2) requests inside a replica at once, the rest
  wait in HAProxy's queue (oldest first; ``MAESTRO_RAY_QUEUE_LIFO=1``: newest first, see
  :data:`serving.engines.haproxy_shed.LIFO_OFFSET`) for at most ``MAESTRO_ADMISSION_QUEUE_MS``
  and are then refused with the contract's ``503`` +
  ``Retry-After``), so a replica's event loop never falls behind and its health check
  keeps passing under 5x its sustainable rate (RELIABILITY.md, item 7). The app's own
  admission control (:mod:`serving.api.admission`) still runs in each replica, and
  ``max_ongoing_requests`` / ``max_queued_requests`` stay as an outer bound (``503`` +
  ``Retry-After`` from Ray, ``BackpressureConfig``, but a plain-text body: the launcher
  caps ``maxconn`` at ``max_ongoing_requests``, so HAProxy always refuses first);
- ``check_health`` fails a replica whose policies are not loaded or whose event log is
  closed, so Serve replaces it;
- the fast proxy path: ``RAY_SERVE_ENABLE_HA_PROXY=1`` and
  ``RAY_SERVE_THROUGHPUT_OPTIMIZED=1`` (an order of magnitude below the default proxy's
  latency: BENCHMARKS.md, "Serving: notes"), set
  before the local cluster starts, with HAProxy's files under a private directory so
  several clusters on one machine do not collide.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any

from serving.settings import Settings
from training.tracking import champion_version

logger = logging.getLogger(__name__)
APP_NAME = "maestro"
DEPLOYMENT_NAME = "Maestro"
#: settings that are secrets: never printed, passed to replicas in memory only
SECRET_FIELDS = ("api_key", "secret", "state_url", "feast_registry_url")


def ray_environment(run_dir: Path) -> dict[str, str]:
    """The environment the local Ray cluster must start with (set before ``ray.init``)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    return {
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
        "RAY_SERVE_HAPROXY_NBTHREAD": str(min(2, os.cpu_count() or 1)),
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(run_dir / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(run_dir / "admin.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(run_dir),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(run_dir / "server-state"),
        # HAProxy's own metrics and stats listeners default to fixed ports (9101, 8404)
        # on 0.0.0.0: two clusters on one machine would collide, so take free ones
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(_free_port()),
        "RAY_SERVE_HAPROXY_STATS_PORT": str(_free_port()),
        # a stopping replica first drains for this long so external load balancers can
        # deregister it (Ray's default: 30 s, which every SIGTERM would wait out); Ray's
        # HAProxy here is local and reconfigured by Ray itself
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "3",
    }


def haproxy_shedding(settings: Settings, run_dir: Path) -> dict[str, str]:
    """The environment that makes Ray's HAProxy shed overload (:mod:`serving.engines.haproxy_shed`):
    per-replica ``maxconn``, ``timeout queue`` = the admission budget, the contract's 503.
    Empty (Ray's own config) when ``MAESTRO_RAY_REPLICA_MAXCONN=0`` or the admission
    budget is off (``MAESTRO_ADMISSION_QUEUE_MS=0``)."""
    from serving.engines import haproxy_shed

    maxconn = settings.ray_replica_maxconn
    if maxconn == 0 or settings.admission_queue_ms <= 0:
        return {}
    if maxconn > settings.ray_max_ongoing_requests:
        # beyond its ongoing slots Ray queues, and refuses (racily, already at
        # ongoing + queued: measured with 1 + 1) with a plain-text 503, not the contract's
        logger.warning(
            "MAESTRO_RAY_REPLICA_MAXCONN=%d lowered to MAESTRO_RAY_MAX_ONGOING_REQUESTS=%d",
            maxconn,
            settings.ray_max_ongoing_requests,
        )
        maxconn = settings.ray_max_ongoing_requests
    import ray

    if ray.__version__ != haproxy_shed.TESTED_RAY_VERSION:
        logger.warning(
            "HAProxy shedding was written for Ray %s, this is Ray %s: the wrapper checks "
            "the generated config's shape and refuses to start HAProxy if it changed",
            haproxy_shed.TESTED_RAY_VERSION,
            ray.__version__,
        )
    from serving.api.admission import EXEMPT_PATHS

    return haproxy_shed.install(
        run_dir,
        maxconn=maxconn,
        queue_ms=settings.admission_queue_ms,
        retry_after_s=settings.admission_retry_after_s,
        priority_paths=sorted(EXEMPT_PATHS),
        lifo=settings.ray_queue_lifo,
    )


#: where HAProxy's own listeners go: above Ray's worker ports (10002-19999 by default) and
#: below Linux's ephemeral range (32768+). A port the kernel handed out as ephemeral could
#: be taken by one of Ray's many processes before HAProxy binds it (seen: "cannot bind
#: socket (Address already in use)" for the metrics frontend, and the cluster failed).
_LISTENER_PORTS = range(20_000, 32_768)


def _free_port() -> int:
    """A port free on 0.0.0.0 now, outside the ranges other processes draw from."""
    import random
    import socket

    for port in random.sample(_LISTENER_PORTS, 200):
        with socket.socket() as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise OSError("no free port for HAProxy's listeners in 20000-32767")


def _stop_leftovers(run_dir: Path) -> None:
    """Terminate processes still running from our private HAProxy directory (Ray's
    shutdown can leave HAProxy orphaned); only ours: their command line names it."""
    marker = str(run_dir).encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker in (proc / "cmdline").read_bytes():
                os.kill(int(proc.name), signal.SIGTERM)
        except (OSError, ValueError):
            continue


def _settings_payload(settings: Settings) -> dict[str, Any]:
    """Settings as plain values (secrets revealed) to rebuild them inside each replica."""
    data = settings.model_dump()
    for name in SECRET_FIELDS:
        value = getattr(settings, name)
        data[name] = value.get_secret_value() if value is not None else None
    data["mlflow_tracking_uri"] = settings.tracking_uri
    data["home"] = str(settings.home)
    if data.get("catalog_path") is not None:
        data["catalog_path"] = str(data["catalog_path"])
    return data


def build_application(settings: Settings, replicas: int = 1) -> Any:
    """The bound Ray Serve application: one deployment, the FastAPI app as its ingress."""
    from ray import serve
    from ray.serve.config import BackpressureConfig

    payload = _settings_payload(settings)

    def build() -> Any:  # runs inside each replica
        from serving.factory import build_app

        return build_app(Settings(**payload))

    placement = (
        {}
        if settings.ray_max_replicas_per_node is None
        else {"max_replicas_per_node": settings.ray_max_replicas_per_node}
    )

    @serve.deployment(
        name=DEPLOYMENT_NAME,
        num_replicas=replicas,
        **placement,
        max_ongoing_requests=settings.ray_max_ongoing_requests,
        max_queued_requests=settings.ray_max_queued_requests,
        backpressure_config=BackpressureConfig(status_code=503, retry_after_s=1),
        health_check_period_s=5,
        health_check_timeout_s=10,
        graceful_shutdown_timeout_s=30,
        ray_actor_options={"num_cpus": 0},
    )
    @serve.ingress(build)
    class Maestro:
        async def check_health(self) -> None:
            service = self.app.state.service  # type: ignore[attr-defined]
            if not service.policies.loaded or not service.log.is_open:
                raise RuntimeError("policies not loaded or event log closed")

    return Maestro.bind()


def start_cluster(
    settings: Settings, host: str, port: int, ray_temp_dir: str | None = None
) -> Path:
    """Start a local Ray cluster and Serve's HTTP proxy on ``host:port``; return HAProxy's
    private directory (short: HAProxy limits its socket path to 97 bytes and adds a
    56-character directory of its own)."""
    run_dir = Path(tempfile.mkdtemp(prefix="mhp-", dir="/tmp"))
    os.environ.update(ray_environment(run_dir))
    os.environ.update(haproxy_shedding(settings, run_dir))
    import ray
    from ray import serve

    _ray_logs_to_application()
    ray.init(
        address="local",  # always our own cluster, never one someone else started here
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
        _temp_dir=ray_temp_dir,
        configure_logging=True,
    )
    serve.start(http_options={"host": host, "port": port}, logging_config={"log_level": "WARNING"})
    return run_dir


def _ray_logs_to_application() -> None:
    """Ray's driver-side loggers (``ray``, ``ray.serve``) write to the terminal through
    their own handlers, past the application's logging; hand their records to it, so the
    command line decides where they go (its log file by default)."""
    for name in ("ray", "ray.serve"):
        ray_logger = logging.getLogger(name)
        for handler in list(ray_logger.handlers):
            ray_logger.removeHandler(handler)
        ray_logger.propagate = True


def stop_cluster(run_dir: Path) -> None:
    """Stop Serve's application, then the cluster, without noise.

    Deleting the application stops its replicas gracefully (their lifespan rolls the
    event log); the cluster then goes down with its controller. ``serve.shutdown()``
    would instead ask the controller to stop itself, and its ``graceful_shutdown`` task,
    killed with it, is reported on the terminal as a failed task ("killed by
    ray.kill"), which reads as a crash."""
    import ray
    from ray import serve

    try:
        serve.delete(APP_NAME)
    except Exception:  # the application never started: nothing of it to stop
        logger.info("no Serve application to delete", exc_info=True)
    ray.shutdown()
    _stop_leftovers(run_dir)
    shutil.rmtree(run_dir, ignore_errors=True)


def run_ray(settings: Settings, host: str, port: int, replicas: int) -> None:
    """``maestro serve --engine ray``: serve until SIGINT/SIGTERM, then shut down cleanly
    (replicas run their lifespan shutdown, which rolls the event log to Parquet). With
    a cluster address (``--address``, ``RAY_ADDRESS``), deploy into that cluster instead
    (:func:`serving.engines.ray_cluster.deploy_to_cluster`)."""
    from ray import serve

    from serving.engines.runner import STOPPED

    # create/migrate the MLflow store once, here: replicas starting together on a fresh
    # SQLite store would race on its schema migration
    champion_version("default", settings.tracking_uri)
    if settings.ray_address is not None:
        from serving.engines.ray_cluster import deploy_to_cluster

        deploy_to_cluster(settings, host, port, replicas)
        return
    # a signal during the slow start-up too only asks to stop: the cluster is then
    # stopped as cleanly as a running one
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    run_dir = start_cluster(settings, host, port, settings.ray_temp_dir)
    # ray.init installs Ray's own failure handler for SIGTERM in the driver (it logs
    # "*** SIGTERM received" and aborts): the stop request gets its handler back
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        if not stop.is_set():
            serve.run(build_application(settings, replicas), name=APP_NAME, route_prefix="/")
        if not stop.is_set():
            print(
                f"maestro: serving on http://{host}:{port} (Ray Serve, {replicas} replica(s));"
                f" workspace {settings.home}",
                flush=True,
            )
        stop.wait()
    finally:
        stop_cluster(run_dir)
    print(STOPPED, flush=True)
