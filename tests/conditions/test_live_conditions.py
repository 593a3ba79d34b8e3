"""``when`` rules and dynamic segments through a real uvicorn server: an action excluded
with its ``condition:`` reason, the customer's segments in the logged row, and a bad
condition stopping ``maestro doctor`` with one line and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from features.source import InMemoryFeatureSource
from serving.service.feature_layer import InMemoryFeatureLayer
from tests.support.live_servers import live_settings
from training.logs.dataset import LogReport, read_parquet_dir
from training.logs.schema import DECISION_SCHEMA

CATALOG = """\
decision_points:
  default:
    actions:
      - {id: no_contact, channel: none}
      - {id: email_offer, channel: email, features: {category: marketing}}
      - {id: vip_call, channel: call_center, features: {category: retention}}
    rules:
      when:
        - {name: vip_only, if: "segment.vip && context.page == 'pricing'", actions: [vip_call]}
"""
TRIGGERS = """\
segments:
  vip: "customer.lifetime_value > 2000 && customer.tenure_days > 365"
  new: "customer.tenure_days < 30"
"""
ROWS = {
    "rich": {"lifetime_value": 5000.0, "tenure_days": 400},
    "poor": {"lifetime_value": 10.0, "tenure_days": 10},
}


def _decisions(home: Path, n: int) -> list[dict]:
    deadline = time.time() + 30
    while time.time() < deadline:
        frame = read_parquet_dir(home / "logs" / "decisions", LogReport())
        if len(frame) >= n:
            return frame.to_dict(orient="records")
        time.sleep(0.3)
    raise AssertionError("the decisions were not rolled to Parquet within 30 s")


def test_when_rule_and_segments_live(tmp_path: Path, live_servers) -> None:
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    (tmp_path / "triggers.yaml").write_text(TRIGGERS)
    layer = InMemoryFeatureLayer(InMemoryFeatureSource(ROWS))
    live = live_servers.start(live_settings(tmp_path), layer)
    ctx = {"page": "pricing"}
    rich = live.client.post("/decide", json={"customer_id": "rich", "context": ctx}).json()
    poor = live.client.post("/decide", json={"customer_id": "poor", "context": ctx}).json()
    assert {r["action_id"] for r in rich["ranking"]} == {"no_contact", "email_offer", "vip_call"}
    assert {"action_id": "vip_call", "reason": "condition:vip_only"} in poor["excluded"]
    assert "vip_call" not in {r["action_id"] for r in poor["ranking"]}
    assert abs(sum(r["probability"] for r in poor["ranking"]) - 1.0) < 1e-9
    live.stop()  # flushes the log to Parquet
    rows = {r["customer_id"]: r for r in _decisions(tmp_path, 2)}
    assert list(rows["rich"]["segments"]) == ["vip"]
    assert list(rows["poor"]["segments"]) == ["new"]


def test_old_parquet_without_segments_still_reads(tmp_path: Path) -> None:
    old_schema = pa.schema([f for f in DECISION_SCHEMA if f.name != "segments"])
    directory = tmp_path / "decisions"
    directory.mkdir()
    empty = {f.name: [None] for f in old_schema}
    empty.update(event_id=["e1"], customer_id=["c1"])
    pq.write_table(pa.table(empty, schema=old_schema), directory / "part-old.parquet")
    new = {f.name: [None] for f in DECISION_SCHEMA}
    new.update(event_id=["e2"], customer_id=["c2"], segments=[["vip"]])
    pq.write_table(pa.table(new, schema=DECISION_SCHEMA), directory / "part-new.parquet")
    frame = read_parquet_dir(directory, LogReport()).set_index("event_id")
    old = frame.loc["e1", "segments"]
    assert old is None or old != old  # null (None or NaN after the concat)
    assert list(frame.loc["e2", "segments"]) == ["vip"]
    whole = pq.read_table(directory, schema=DECISION_SCHEMA).to_pydict()
    assert sorted(whole["segments"], key=str) == [None, ["vip"]]


def test_bad_segment_stops_doctor_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "triggers.yaml").write_text('segments:\n  vip: "customer.spend > 2000"\n')
    env = {**os.environ, "MAESTRO_HOME": str(tmp_path), "PYTHONPATH": os.getcwd(),
           "FEAST_USAGE": "False", "MLFLOW_ENABLE_TELEMETRY": "false"}
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "doctor"], env=env, capture_output=True, text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [
        f"maestro: error: {tmp_path / 'triggers.yaml'}:2: condition 'customer.spend > 2000': "
        "unknown feature 'spend'"
    ]
