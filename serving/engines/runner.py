"""Running the app: one uvicorn process, or a Ray Serve deployment
(:mod:`serving.engines.ray_serve`)."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import socket

from serving.errors import CannotListenError
from serving.settings import Settings, get_settings


def ensure_port_free(host: str, port: int) -> None:
    """Fail at once, before any slow start-up, when ``host:port`` is taken: bind it the
    way uvicorn and HAProxy will (``SO_REUSEADDR``, so a closed socket's TIME_WAIT is no
    obstacle) and let go."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CannotListenError(f"port {port} is in use on {host}", field="port") from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise CannotListenError(
                    f"cannot listen on {host}: not an address of this machine", field="host"
                ) from None
            raise


def uvicorn_config(app: object, host: str, port: int) -> object:
    """uvicorn with uvloop and httptools, no access log (keys never reach a log line).
    No ``limit_concurrency``: its ``503`` has no ``Retry-After``; the app sheds overload
    itself (:mod:`serving.api.admission`), first in the HTTP protocol, where a refusal costs
    least (:mod:`serving.engines.uvicorn_shed`)."""
    import uvicorn

    from serving.engines.uvicorn_shed import SheddingHttpToolsProtocol

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http=SheddingHttpToolsProtocol,
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=10,
        backlog=4096,
    )


#: the line a clean stop (SIGINT or SIGTERM) of ``maestro serve`` ends with, either engine
STOPPED = "maestro: stopped"


def _stop(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def run_uvicorn(settings: Settings, host: str, port: int) -> None:
    """Serve in this process until SIGINT/SIGTERM (then the lifespan flushes the log),
    and say so in one line.

    uvicorn handles the signal during the run, then raises it again once it has shut
    down; both signals then raise ``KeyboardInterrupt`` here, which ends the run."""
    import uvicorn

    from serving.factory import build_app

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    signal.signal(signal.SIGTERM, _stop)
    app = build_app(settings)
    server = uvicorn.Server(uvicorn_config(app, host, port))  # type: ignore[arg-type]
    print(
        f"maestro: serving on http://{host}:{port} (uvicorn, pid {os.getpid()});"
        f" workspace {settings.home}",
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:  # uvicorn returns after a failed start-up, having logged why
        raise RuntimeError("the server did not start (see the lines above)")
    print(STOPPED, flush=True)


def print_serve_config(host: str, port: int, replicas: int) -> str:
    """The body of ``maestro serve --print-config``: the Ray Serve config YAML."""
    from serving.engines.ray_cluster import print_config

    return print_config(get_settings(), host, port, replicas)


def serve(engine: str, host: str, port: int, replicas: int, address: str | None = None) -> None:
    """The body of ``maestro serve``; ``address``: an existing Ray cluster to deploy into
    (else ``RAY_ADDRESS``, else a private local cluster)."""
    from serving.factory import preflight

    settings = get_settings()
    if address is not None:
        settings = settings.model_copy(update={"ray_address": address})
    if engine == "uvicorn" and address is not None:
        raise ValueError("--address applies to --engine ray; uvicorn runs one process")
    if engine == "uvicorn" or settings.ray_address is None:  # a cluster's nodes listen
        ensure_port_free(host, port)
    preflight(settings)
    if engine == "uvicorn":
        if replicas != 1:
            raise ValueError("--replicas applies to --engine ray; uvicorn runs one process")
        run_uvicorn(settings, host, port)
    else:
        from serving.engines.ray_serve import run_ray

        run_ray(settings, host, port, replicas)
