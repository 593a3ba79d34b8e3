"""``DELETE /customers/{id}`` runs off the event loop: while an erasure is in flight (held
on purpose inside the feature store's eraser), the same server answers ``/decide``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from features.source import InMemoryFeatureSource
from serving.service.feature_layer import InMemoryFeatureLayer


class HeldEraseLayer(InMemoryFeatureLayer):
    """An in-memory feature layer whose ``erase`` waits until the test releases it."""

    def __init__(self) -> None:
        super().__init__(InMemoryFeatureSource({"c-held": {"consent_email": True}}))
        self.started = threading.Event()
        self.release = threading.Event()

    def erase(self, customer_id: str) -> dict[str, int]:
        self.started.set()
        self.release.wait(timeout=60)
        return super().erase(customer_id)


@pytest.fixture
def held_server(
    tmp_path: Any, mlflow_uri: str, helpers: Any
) -> Iterator[tuple[str, HeldEraseLayer]]:
    import uvicorn

    from serving.api.app import create_app
    from serving.engines.runner import uvicorn_config
    from serving.factory import build_service
    from serving.settings import Settings

    settings = Settings(home=tmp_path, mlflow_tracking_uri=mlflow_uri, feature_source="memory")
    layer = HeldEraseLayer()
    service = build_service(settings, layer)
    app = create_app(service, api_keys=settings.api_keys, max_body_bytes=settings.max_body_bytes)
    port = helpers.free_port()
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    helpers.wait_http(f"{base}/healthz", timeout=120)
    try:
        yield base, layer
    finally:
        layer.release.set()
        server.should_exit = True
        thread.join(timeout=30)


def test_decide_is_answered_while_an_erasure_runs(held_server: Any) -> None:
    base, layer = held_server
    with httpx.Client(base_url=base, timeout=30) as client:
        client.post("/decide", json={"customer_id": "c-held", "decision_point": "cart_abandoned"})
        answers: dict[str, httpx.Response] = {}

        def delete() -> None:
            answers["delete"] = client.delete("/customers/c-held")

        deleting = threading.Thread(target=delete)
        deleting.start()
        assert layer.started.wait(timeout=30), "the erasure never started"
        with httpx.Client(base_url=base, timeout=5) as other:
            decided = other.post(
                "/decide", json={"customer_id": "c-other", "decision_point": "cart_abandoned"}
            )
        assert decided.status_code == 200, decided.text
        assert "delete" not in answers  # the erasure was still in flight
        layer.release.set()
        deleting.join(timeout=30)
    assert answers["delete"].status_code == 200
    assert answers["delete"].json()["erased"]["online"] == 1
