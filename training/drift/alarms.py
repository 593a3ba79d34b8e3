"""The workspace's drift alarm file: the server appends, ``maestro train --every`` reads.

``$MAESTRO_HOME/drift/alarms.jsonl``: one JSON object per alarm (``decision_point``,
``detector``, ``value``, ``timestamp``, ``detail``, ``replica``), each appended with one
``write(2)`` on a file opened ``O_APPEND``, so replicas sharing the workspace never
interleave lines. A file in the workspace rather than ``/metrics``: the trainer then needs
no server address, and an alarm raised while it was stopped is still there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from training.drift.detectors import Alarm

ALARM_FILE = Path("drift") / "alarms.jsonl"


def alarm_path(home: Path) -> Path:
    return Path(home) / ALARM_FILE


def append_alarm(path: Path, alarm: Alarm, replica: str = "") -> None:
    """Append ``alarm`` as one line (directories made on first use)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({
        "decision_point": alarm.decision_point, "detector": alarm.detector,
        "value": alarm.value, "timestamp": alarm.timestamp, "detail": alarm.detail,
        "replica": replica,
    }, allow_nan=False) + "\n"  # fmt: skip
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def alarms_since(path: Path, since: float) -> list[Alarm]:
    """The alarms of ``path`` raised after ``since`` (epoch seconds); a torn or foreign
    line is skipped."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
            alarm = Alarm(str(row["decision_point"]), str(row["detector"]), float(row["value"]),
                          float(row["timestamp"]), str(row.get("detail", "")))  # fmt: skip
        except (ValueError, KeyError, TypeError):
            continue
        if alarm.timestamp > since:
            out.append(alarm)
    return out


def record_on_champion(alarms: list[Alarm], tracking_uri: str) -> dict[str, str]:
    """Tag each alarmed decision point's champion run in MLflow: ``drift_alarm`` (the
    latest alarm's detector and detail), ``drift_alarm_at`` (its time), and the metric
    ``drift_alarms`` (alarms recorded so far). Returns ``{decision_point: run_id}`` of the
    runs tagged (a decision point without a champion is skipped)."""
    from mlflow.exceptions import MlflowException

    from training.tracking import CHAMPION, client, model_name

    c = client(tracking_uri)
    tagged: dict[str, str] = {}
    for point in sorted({a.decision_point for a in alarms}):
        mine = [a for a in alarms if a.decision_point == point]
        last = max(mine, key=lambda a: a.timestamp)
        try:
            run_id = c.get_model_version_by_alias(model_name(point), CHAMPION).run_id
        except MlflowException:
            continue
        if not run_id:
            continue
        history = c.get_metric_history(run_id, "drift_alarms")
        so_far = int(max((m.value for m in history), default=0)) + len(mine)
        c.set_tag(run_id, "drift_alarm", f"{last.detector}: {last.detail}")
        c.set_tag(run_id, "drift_alarm_at", f"{last.timestamp:.3f}")
        c.log_metric(run_id, "drift_alarms", so_far, step=so_far)
        tagged[point] = run_id
    return tagged
