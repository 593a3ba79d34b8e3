"""Feast's SQL registry on PostgreSQL (``MAESTRO_FEAST_REGISTRY_URL``): ``maestro init``
writes the repo's configuration to name it through the environment (no password in the
file), applies the definitions into the session's real PostgreSQL, and a second process
reading the repo sees the same feature views."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_init_applies_into_the_sql_registry_every_node_reads(tmp_path: Path, postgres) -> None:
    import psycopg

    url = postgres.database()
    registry = url.replace("postgresql://", "postgresql+psycopg://", 1)
    env = {**os.environ, "MAESTRO_HOME": str(tmp_path), "MAESTRO_FEAST_REGISTRY_URL": registry}
    done = subprocess.run([sys.executable, "-m", "cli.main", "init", "--customers", "50"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    config = (tmp_path / "feature_repo" / "feature_store.yaml").read_text()
    assert "registry_type: sql" in config and "${MAESTRO_FEAST_REGISTRY_URL}" in config
    assert not (tmp_path / "feature_repo" / "data" / "registry.db").exists()
    with psycopg.connect(url) as conn:
        names = {row[0] for row in conn.execute("SELECT feature_view_name FROM feature_views")}
    assert {"customer_profile", "agent"} <= names, names
    probe = subprocess.run(
        [sys.executable, "-c",
         "from feast import FeatureStore; import sys;"
         "print(sorted(v.name for v in FeatureStore(repo_path=sys.argv[1]).list_feature_views()))",
         str(tmp_path / "feature_repo")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    assert "customer_profile" in probe.stdout
