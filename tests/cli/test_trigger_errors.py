"""Bad trigger YAML stops ``maestro serve`` and ``maestro doctor`` at start-up: one line
``maestro: error: <file>:<line>: <problem>``, exit 2, no server started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from trigger_yaml import TRIGGERS_YAML

GOOD = TRIGGERS_YAML


@pytest.mark.parametrize("command", [["doctor"], ["serve", "--engine", "uvicorn", "--port", "0"]])
@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("decision_point: churn_risk", "decision_point: churn",
         "10: trigger 'vip_on_pricing': unknown decision point 'churn' (catalog: agent_routing, "
         "billing_overdue, cart_abandoned, churn_risk, default, onboarding)"),
        ("deliver: crm_hook", "deliver: crm",
         "11: trigger 'vip_on_pricing': unknown destination 'crm' "
         "(destinations: crm_hook, engine_stream)"),
        ("{type: page_view}]", "{type: page_viewed}]",
         "9: trigger 'vip_on_pricing': unknown event type 'page_viewed'"),
        ("event.properties.page == 'pricing'", "event.props.page == 'pricing'",
         "8: condition \"event.props.page == 'pricing'\": unknown event field 'props' "
         "(use event.type or event.properties.<name>)"),
    ],
)
def test_bad_trigger_is_one_line_and_exit_2(
    tmp_path: Path, command: list[str], old: str, new: str, problem: str
) -> None:
    path = tmp_path / "triggers.yaml"
    path.write_text(GOOD.replace(old, new, 1))
    env = {**os.environ, "MAESTRO_HOME": str(tmp_path), "PYTHONPATH": os.getcwd(),
           "MAESTRO_WEBHOOK_SECRET": "s3cret",  # the destinations are good: the triggers fail
           "MAESTRO_DELIVERY_REDIS_URL": "redis://127.0.0.1:1/0",
           "FEAST_USAGE": "False", "MLFLOW_ENABLE_TELEMETRY": "false",
           "RAY_USAGE_STATS_ENABLED": "0", "DO_NOT_TRACK": "1"}
    done = subprocess.run([sys.executable, "-m", "cli.main", *command], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"maestro: error: {path}:{problem}"), lines
