"""`maestro train --every` retrains on a schedule (a real subprocess, real MLflow)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from cli.training import CommandError, parse_every
from policies.catalog import load_catalog
from policies.registry import make_policy
from training.synthetic_logs import write_synthetic_logs


@pytest.mark.parametrize(("text", "seconds"), [("10m", 600), ("30s", 30), ("2h", 7200), ("5", 5)])
def test_parse_every(text: str, seconds: float) -> None:
    assert parse_every(text) == seconds


@pytest.mark.parametrize("text", ["often", "0s", "-1m", "10 minutes"])
def test_parse_every_rejects(text: str) -> None:
    with pytest.raises(CommandError, match="--every"):
        parse_every(text)


def test_every_retrains_until_stopped(tmp_path) -> None:
    write_synthetic_logs(tmp_path / "logs", load_catalog(), make_policy("uniform"), 600)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "MAESTRO_HOME": str(tmp_path), "MLFLOW_TRACKING_URI": uri}
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)  # not the global registry
    client.search_experiments()  # the store exists before the trainer starts, as after init
    out_path, err_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out_path.open("w") as out_file, err_path.open("w") as err_file:
        # files, not pipes: a child blocked on a full pipe would look like a hang
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "train", "--policy", "linucb", "--every", "1s"],
            env=env,
            stdout=out_file,
            stderr=err_file,
            text=True,
        )
        try:
            deadline = time.monotonic() + 300
            versions = []
            while time.monotonic() < deadline and len(versions) < 2:
                time.sleep(1.0)
                assert proc.poll() is None, err_path.read_text()[-3000:]
                versions = client.search_model_versions("name='maestro-cart_abandoned'")
            assert len(versions) >= 2, err_path.read_text()[-3000:]
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
    out, err = out_path.read_text(), err_path.read_text()
    assert out.count("cart_abandoned: run ") >= 1  # the last may be cut by the interrupt
    assert "Traceback" not in err
