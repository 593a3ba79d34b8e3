"""``maestro train --every`` and drift: an alarm in the workspace retrains early.

The server appends each drift alarm to ``$MAESTRO_HOME/drift/alarms.jsonl``
(:mod:`training.drift.alarms`); between scheduled runs the trainer looks at that file
every few seconds, and an alarm newer than its last look — for the decision point it
trains, or any when it trains every one — is recorded on the champion's MLflow run and
starts the next run at once.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from training.drift.alarms import alarm_path, alarms_since, record_on_champion


class AlarmWatch:
    """True (once per batch of new alarms) when the workspace holds an alarm not yet seen."""

    def __init__(self, home: Path, tracking_uri: str, decision_point: str | None) -> None:
        self.path = alarm_path(home)
        self.tracking_uri = tracking_uri
        self.decision_point = decision_point
        self.seen = time.time()  # alarms raised before the trainer started were acted on

    def __call__(self) -> bool:
        new = [
            a for a in alarms_since(self.path, self.seen)
            if self.decision_point is None or a.decision_point == self.decision_point
        ]  # fmt: skip
        if not new:
            return False
        self.seen = max(a.timestamp for a in new)
        record_on_champion(new, self.tracking_uri)
        for a in new:
            click.echo(f"maestro: train: drift alarm at {a.decision_point} ({a.detector}: "
                       f"{a.detail}); retraining now", err=True)  # fmt: skip
        return True
