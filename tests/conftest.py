"""Session-wide test setup: no telemetry leaves the machine."""

from __future__ import annotations

import os

os.environ.setdefault("FEAST_USAGE", "False")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
