"""Item 10, auth: missing, wrong and rotated keys on every protected endpoint; the keys
appear in no log line and no file the service writes."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

PROTECTED = [
    ("POST", "/decide", {"customer_id": "c-all"}),
    ("POST", "/reward", {"event_id": "x", "reward": 1.0}),
    ("POST", "/events", {"customer_id": "c-all", "type": "page_view"}),
    ("DELETE", "/customers/c-nobody", None),
    ("GET", "/readyz", None),
    ("GET", "/experiments", None),
    ("GET", "/stages", None),
    ("GET", "/dashboard", None),
    ("GET", "/dashboard/data", None),
    ("GET", "/openapi.json", None),
    ("POST", "/decisions/some-event/activate", None),
    ("GET", "/budgets", None),
]


def _call(base: str, method: str, path: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    return httpx.request(method, base + path, json=body, headers=headers, timeout=30)


def _bad_headers(keys: tuple[str, ...]) -> dict[str, dict[str, str]]:
    key = keys[0]
    return {
        "missing": {},
        "bare scheme": {"Authorization": "Bearer"},
        "wrong key": {"Authorization": "Bearer not-a-key"},
        "basic scheme": {"Authorization": f"Basic {key}"},
        "key prefix": {"Authorization": f"Bearer {key[:-1]}"},
        "key plus suffix": {"Authorization": f"Bearer {key}x"},
        "two keys joined": {"Authorization": f"Bearer {','.join(keys)}"},
        "key in query, not header": {},
    }


def test_missing_and_wrong_keys_are_401_everywhere(rel_server: Any, figure: Any) -> None:
    from live_servers import KEYS  # type: ignore[import-not-found]

    refused = 0
    for name, headers in _bad_headers(KEYS).items():
        for method, path, body in PROTECTED:
            url_path = path + (f"?api_key={KEYS[0]}" if "query" in name else "")
            r = _call(rel_server.base_url, method, url_path, body, headers)
            assert r.status_code == 401, (name, method, path, r.status_code)
            assert r.headers["WWW-Authenticate"] == "Bearer"
            assert r.json()["detail"][0]["field"] == "authorization"
            refused += 1
    for key in KEYS:  # each listed key is accepted (rotation: old and new at once)
        good = {"Authorization": f"Bearer {key}"}
        for method, path, body in PROTECTED:
            r = _call(rel_server.base_url, method, path, body, good)
            assert r.status_code != 401, (method, path)
    for path in ("/healthz", "/metrics"):  # open by contract
        assert httpx.get(rel_server.base_url + path).status_code == 200
    figure("auth.refused_requests", refused)
    figure("auth.cases", len(_bad_headers(KEYS)) * len(PROTECTED))


def test_rotation_retires_the_old_key(rel_server: Any, figure: Any) -> None:
    """Rotate: the same service behind a second server with keys (new, newer): the old
    key is refused there, the kept one accepted, the newest accepted."""
    import uvicorn
    from live_servers import KEYS, free_port, wait_http  # type: ignore[import-not-found]

    from serving.api.app import create_app
    from serving.engines.runner import uvicorn_config

    rotated = (KEYS[1], "key-newest-0000")
    app = create_app(rel_server.service, api_keys=rotated, manage_lifecycle=False)
    port = free_port()
    uv = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port))  # type: ignore[arg-type]
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/healthz")
        body = {"customer_id": "c-all"}
        old = _call(base, "POST", "/decide", body, {"Authorization": f"Bearer {KEYS[0]}"})
        kept = _call(base, "POST", "/decide", body, {"Authorization": f"Bearer {rotated[0]}"})
        new = _call(base, "POST", "/decide", body, {"Authorization": f"Bearer {rotated[1]}"})
        assert (old.status_code, kept.status_code, new.status_code) == (401, 200, 200)
        figure("auth.rotation", {"old": old.status_code, "kept": kept.status_code,
                                 "new": new.status_code})
    finally:
        uv.should_exit = True
        thread.join(timeout=30)


def test_keys_never_reach_a_log_line_or_file(
    rel_server: Any, caplog: pytest.LogCaptureFixture, figure: Any
) -> None:
    from live_servers import KEYS  # type: ignore[import-not-found]

    caplog.set_level(logging.DEBUG)
    headers_bad = {"Authorization": f"Bearer {KEYS[0]}-wrong"}
    for key in (*KEYS, f"{KEYS[0]}-wrong"):
        h = {"Authorization": f"Bearer {key}"}
        _call(rel_server.base_url, "POST", "/decide", {"customer_id": "c-all"}, h)
        _call(rel_server.base_url, "POST", "/reward", {"event_id": "nope", "reward": 1}, h)
        _call(rel_server.base_url, "POST", "/decide", {"customer_id": 1}, h)  # a 422
    _call(rel_server.base_url, "GET", "/readyz", None, headers_bad)
    rel_server.service.log.roll()
    secrets = [k.encode() for k in (*KEYS, f"{KEYS[0]}-wrong")]
    text = "\n".join(r.getMessage() + " " + str(r.args) for r in caplog.records)
    assert not any(s.decode() in text for s in secrets)
    metrics = httpx.get(rel_server.base_url + "/metrics").content
    assert not any(s in metrics for s in secrets)
    scanned = 0
    for path in Path(rel_server.home).rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            scanned += 1
            assert not any(s in blob for s in secrets), path
    assert repr(rel_server.settings).count(KEYS[0]) == 0  # SecretStr hides them
    figure("auth.log_records_scanned", len(caplog.records))
    figure("auth.files_scanned_for_keys", scanned)
    figure("auth.keys_found", 0)
