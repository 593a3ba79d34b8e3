"""Rollout stages in the MLflow registry: aliases per stage, tags for the settings, and
the evidence of every automatic rollback.

Stages are **aliases** of the decision point's registered model (``maestro-<dp>``):

- ``shadow`` — loaded beside the champion; its choice and its probability of the logged
  action are logged on live traffic and evaluated off-policy as rewards arrive;
- ``canary`` — serves a share of the customers (registered-model tag
  ``maestro.rollout.share``) while guardrails compare it with the champion;
- ``champion`` — serves everyone else; moved by a staged promotion, the old champion
  keeps the alias ``previous_champion`` and, while the tag ``maestro.rollout.watch`` is
  ``on``, serves the same share as a baseline the new champion is watched against.

A rollback moves the alias back (a canary loses ``canary``; a watched champion's alias
returns to ``previous_champion``'s version) and logs an MLflow run ``rollback-<dp>``
whose tags and metrics hold the guardrail, the statistic, the threshold and the
decisions seen. MLflow is imported inside the functions (through
:func:`training.tracking.client`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from training import tracking

SHADOW = "shadow"
CANARY = "canary"
CHAMPION = tracking.CHAMPION
PREVIOUS = "previous_champion"
STAGES = (SHADOW, CANARY, CHAMPION)
SHARE_TAG = "maestro.rollout.share"
WATCH_TAG = "maestro.rollout.watch"
LAST_ROLLBACK_TAG = "maestro.rollout.last_rollback"
DEFAULT_SHARE = 0.1


@dataclass(frozen=True)
class StageState:
    """The stage versions of one decision point (None: no such alias)."""

    decision_point: str
    champion: str | None = None
    shadow: str | None = None
    canary: str | None = None
    previous: str | None = None
    share: float = DEFAULT_SHARE
    watch: bool = False
    last_rollback: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision_point": self.decision_point,
            "champion": self.champion,
            "shadow": self.shadow,
            "canary": self.canary,
            "previous_champion": self.previous,
            "share": self.share,
            "watch": self.watch,
            "stage": self.stage,
            "last_rollback": self.last_rollback,
        }

    @property
    def stage(self) -> str:
        """The rollout's step: ``canary``, ``watch`` (a new champion under guard),
        ``shadow``, or ``champion`` (nothing in flight)."""
        if self.canary is not None:
            return CANARY
        if self.watch and self.previous is not None:
            return "watch"
        if self.shadow is not None:
            return SHADOW
        return CHAMPION


def read_state(decision_point: str, tracking_uri: str, mlflow_client: Any = None) -> StageState:
    """The decision point's aliases and rollout tags (one registry read)."""
    from mlflow.exceptions import MlflowException

    c = mlflow_client or tracking.client(tracking_uri)
    try:
        model = c.get_registered_model(tracking.model_name(decision_point))
    except MlflowException as exc:
        if getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
            return StageState(decision_point)
        raise
    aliases = {a: str(v) for a, v in (model.aliases or {}).items()}
    tags = model.tags or {}
    last = tags.get(LAST_ROLLBACK_TAG)
    return StageState(
        decision_point,
        champion=aliases.get(CHAMPION),
        shadow=aliases.get(SHADOW),
        canary=aliases.get(CANARY),
        previous=aliases.get(PREVIOUS),
        share=float(tags.get(SHARE_TAG, DEFAULT_SHARE)),
        watch=tags.get(WATCH_TAG) == "on",
        last_rollback=json.loads(last) if last else None,
    )


def latest_version(decision_point: str, tracking_uri: str) -> str | None:
    """The newest registered version of the decision point, or None."""
    c = tracking.client(tracking_uri)
    found = c.search_model_versions(f"name='{tracking.model_name(decision_point)}'")
    return max((str(v.version) for v in found), key=int, default=None)


def move_stage(
    decision_point: str,
    stage: str,
    version: str,
    tracking_uri: str,
    share: float | None = None,
) -> StageState:
    """Put ``version`` at ``stage`` and return the new state (see the module doc):
    ``shadow`` sets the alias; ``canary`` also sets the share and clears a shadow of the
    same version; ``champion`` keeps the old champion as ``previous_champion`` and turns
    the watch on (its share: ``share`` or the current one)."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
    c = tracking.client(tracking_uri)
    name = tracking.model_name(decision_point)
    before = read_state(decision_point, tracking_uri, c)
    if share is not None:
        c.set_registered_model_tag(name, SHARE_TAG, repr(float(share)))
    if stage == SHADOW:
        c.set_registered_model_alias(name, SHADOW, version)
    elif stage == CANARY:
        c.set_registered_model_alias(name, CANARY, version)
        if before.shadow == version:
            c.delete_registered_model_alias(name, SHADOW)
    else:
        if before.champion is not None and before.champion != version:
            c.set_registered_model_alias(name, PREVIOUS, before.champion)
            c.set_registered_model_tag(name, WATCH_TAG, "on")
        c.set_registered_model_alias(name, CHAMPION, version)
        for alias, held in ((CANARY, before.canary), (SHADOW, before.shadow)):
            if held == version:
                c.delete_registered_model_alias(name, alias)
    return read_state(decision_point, tracking_uri, c)


def end_watch(decision_point: str, tracking_uri: str) -> None:
    """The watched champion passed its guard: stop serving the previous champion."""
    tracking.client(tracking_uri).set_registered_model_tag(
        tracking.model_name(decision_point), WATCH_TAG, "passed"
    )


def roll_back(
    decision_point: str, state: StageState, evidence: dict[str, Any], tracking_uri: str
) -> dict[str, Any]:
    """Undo the rollout step in flight (canary, or a watched champion), record why, and
    return the record. ``evidence``: the guardrail's name and its test's state."""
    import mlflow

    c = tracking.client(tracking_uri)
    name = tracking.model_name(decision_point)
    bad: str | None
    kept: str | None
    if state.canary is not None:
        bad, kept = state.canary, state.champion
        c.delete_registered_model_alias(name, CANARY)
    elif state.watch and state.previous is not None:
        bad, kept = state.champion, state.previous
        c.set_registered_model_alias(name, CHAMPION, state.previous)
        c.set_registered_model_tag(name, WATCH_TAG, "rolled_back")
    else:
        raise ValueError(f"{decision_point}: no canary or watched champion to roll back")
    record = {
        "decision_point": decision_point,
        "stage": state.stage,
        "rolled_back_version": bad,
        "serving_version": kept,
        **evidence,
    }
    c.set_registered_model_tag(name, LAST_ROLLBACK_TAG, json.dumps(record, default=str))
    mlflow.set_tracking_uri(tracking_uri)
    metrics = {k: float(v) for k, v in evidence.items()
               if isinstance(v, int | float) and not isinstance(v, bool)}
    tags = {f"rollback.{k}": str(v) for k, v in record.items()}
    with mlflow.start_run(
        experiment_id=tracking._experiment_id(tracking_uri),
        run_name=f"rollback-{decision_point}",
        tags={"decision_point": decision_point, **tags},
    ) as run:
        mlflow.log_metrics(metrics)
    record["run_id"] = run.info.run_id
    return record
