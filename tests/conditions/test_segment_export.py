"""``maestro segment export NAME``: the customers of a segment from the offline store,
with the feature values that qualified them; an unknown segment is exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd


def _maestro(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MAESTRO_HOME": str(home), "PYTHONPATH": os.getcwd(),
           "FEAST_USAGE": "False", "MLFLOW_ENABLE_TELEMETRY": "false"}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_segment_export_writes_the_qualifying_customers(tmp_path: Path) -> None:
    data = tmp_path / "feature_repo" / "data"
    data.mkdir(parents=True)
    pd.DataFrame({
        "customer_id": ["a", "b", "c", "a"],
        "lifetime_value": [3000.0, 2500.0, 10.0, 100.0],  # a's latest row no longer qualifies
        "tenure_days": [400, 500, 900, 400],
        "region": ["n", "s", "e", "n"],
        "event_timestamp": pd.to_datetime(["2026-01-01", "2026-01-01", "2026-01-01",
                                           "2026-02-01"], utc=True),
    }).to_parquet(data / "customers.parquet")
    (tmp_path / "triggers.yaml").write_text(
        'segments:\n  vip: "customer.lifetime_value > 2000 && customer.tenure_days > 365"\n'
    )
    done = _maestro(tmp_path, "segment", "export", "vip")
    assert done.returncode == 0, done.stderr
    target = tmp_path / "segments" / "vip.parquet"
    assert done.stdout.strip() == f"segment vip: 1 of 3 customers -> {target}"
    audience = pd.read_parquet(target)
    assert list(audience.columns) == ["customer_id", "lifetime_value", "tenure_days"]
    assert audience.to_dict(orient="records") == [
        {"customer_id": "b", "lifetime_value": 2500.0, "tenure_days": 500}
    ]
    unknown = _maestro(tmp_path, "segment", "export", "gold")
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "maestro: error: unknown segment 'gold' (triggers.yaml: vip)"
