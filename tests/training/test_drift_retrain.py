"""`maestro train --every` retrains at once on a drift alarm in the workspace, and records
the alarm on the champion's MLflow run (a real subprocess, real MLflow)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from policies.catalog import load_catalog
from policies.registry import make_policy
from training.drift.alarms import alarm_path, append_alarm
from training.drift.detectors import RESIDUAL, Alarm
from training.synthetic_logs import write_synthetic_logs
from training.tracking import register_policy

DP = "cart_abandoned"


def test_a_drift_alarm_retrains_before_the_schedule(tmp_path) -> None:
    write_synthetic_logs(tmp_path / "logs", load_catalog(), make_policy("uniform"), 600)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    champion_run, _ = register_policy(make_policy("uniform").save(), DP, uri, kind="uniform",
                                      champion=True)  # fmt: skip
    env = {**os.environ, "MAESTRO_HOME": str(tmp_path), "MLFLOW_TRACKING_URI": uri}
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)

    def versions() -> int:
        return len(client.search_model_versions(f"name='maestro-{DP}'"))

    out_path, err_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out_path.open("w") as out_file, err_path.open("w") as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "train", "--policy", "linucb",
             "--decision-point", DP, "--every", "1h"],
            env=env, stdout=out_file, stderr=err_file, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and versions() < 2:  # the first scheduled run
                time.sleep(0.5)
                assert proc.poll() is None, err_path.read_text()[-3000:]
            assert versions() == 2, err_path.read_text()[-3000:]
            time.sleep(3.0)
            assert versions() == 2  # the next run is an hour away
            raised = time.time()
            append_alarm(alarm_path(tmp_path), Alarm(DP, RESIDUAL, -0.4, raised, "test shift"))
            while time.monotonic() < deadline and versions() < 3:
                time.sleep(0.5)
            waited = time.time() - raised
            assert versions() == 3, err_path.read_text()[-3000:]
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
    assert waited < 120  # polled every 2 s, then one training run
    err = err_path.read_text()
    assert f"drift alarm at {DP} (residual: test shift); retraining now" in err
    assert "Traceback" not in err
    run = client.get_run(champion_run)
    assert run.data.tags["drift_alarm"] == "residual: test shift"
    assert float(run.data.tags["drift_alarm_at"]) == round(raised, 3)
    assert run.data.metrics["drift_alarms"] == 1
