"""Integration: :class:`features.layer.FeastFeatureLayer`, the four verbs serving uses."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from features.errors import InvalidEventError

pytestmark = [pytest.mark.integration,
              pytest.mark.filterwarnings("ignore:Stream feature views:RuntimeWarning")]


@dataclass(frozen=True)
class ServingEvent:
    """The shape of serving's event record (attributes, timestamp 0 = now)."""

    customer_id: str
    type: str
    properties: dict
    timestamp: float = 0.0


def test_layer_reads_ingests_and_erases(repo: Path, tmp_path: Path) -> None:
    from features.layer import FeastFeatureLayer
    from features.source import FeatureSource

    shutil.copytree(repo, tmp_path / "feature_repo")  # erasure must not touch the shared repo
    layer = FeastFeatureLayer(tmp_path, timeout=2.0)
    try:
        assert isinstance(layer, FeatureSource) and layer.ping()
        assert layer.get("c-000190").known
        layer.ingest(ServingEvent("c-000190", "consent_changed",
                                  {"channel": "whatsapp", "granted": False}))
        assert layer.get("c-000190").values["consent_whatsapp"] is False
        layer.ingest({"customer_id": "c-000190", "type": "page_view",
                      "properties": {"page": "pricing"}})
        assert layer.get("c-000190").values["last_page"] == "pricing"
        with pytest.raises(InvalidEventError, match="unknown event type"):
            layer.ingest(ServingEvent("c-000190", "teleported", {}))
        counts = layer.erase("c-000190")
        assert counts["online_values"] >= 65 and counts["offline_rows"] == 1
        assert not layer.get("c-000190").known
    finally:
        layer.close()
