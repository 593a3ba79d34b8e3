"""MLflow helpers: one registered model per decision point, the ``champion`` alias, and
the champion's policy bytes.

- registered model name: ``maestro-<decision_point>`` (:func:`model_name`);
- each version is a pyfunc (:mod:`training.pyfunc`) whose artifact is the policy's
  ``save()`` bytes; version tags ``policy_kind`` and ``decision_point``;
- the serving layer reads the champion with :func:`champion_version` (cheap, polled) and
  :func:`load_version_bytes` (only when the version changed).

The tracking URI defaults to ``sqlite:///$MAESTRO_HOME/mlflow.db``; artifacts of a SQLite
store live next to it in ``mlartifacts/``. MLflow is imported inside the functions.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHAMPION = "champion"
EXPERIMENT = "maestro"


@dataclass(frozen=True)
class ChampionRef:
    decision_point: str
    version: str
    kind: str


def model_name(decision_point: str) -> str:
    """The registered model of ``decision_point``."""
    return f"maestro-{decision_point}"


def _artifact_root(tracking_uri: str) -> str | None:
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri.removeprefix("sqlite:///"))
        return (db.parent / "mlartifacts").absolute().as_uri()
    return None


class _LogLines:
    """A text stream whose lines become INFO records of the ``mlflow`` logger."""

    def __init__(self) -> None:
        self._logger = logging.getLogger("mlflow")
        self._partial = ""

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            if line.strip():
                self._logger.info(line)
        return len(text)

    def flush(self) -> None:
        pass


def _mlflow_prints_to_logging() -> None:
    """MLflow prints some messages (``Successfully registered model …``, ``Created
    version …``) straight to stderr, past logging; make them records of the ``mlflow``
    logger, so the application decides where they go. MLflow's ``eprint`` writes to the
    module attribute ``MLFLOW_LOGGING_STREAM`` (MLflow 3.x); replaced once."""
    from mlflow.utils import logging_utils

    if not isinstance(logging_utils.MLFLOW_LOGGING_STREAM, _LogLines):
        logging_utils.MLFLOW_LOGGING_STREAM = _LogLines()


def client(tracking_uri: str) -> Any:
    """An ``MlflowClient`` on ``tracking_uri`` (tracking and registry in the same store)."""
    from mlflow import MlflowClient

    _mlflow_prints_to_logging()
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _experiment_id(tracking_uri: str, name: str = EXPERIMENT) -> str:
    c = client(tracking_uri)
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    try:
        return c.create_experiment(name, artifact_location=_artifact_root(tracking_uri))
    except Exception:  # another process created it first
        exp = c.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def register_policy(
    policy_bytes: bytes,
    decision_point: str,
    tracking_uri: str,
    *,
    kind: str,
    params: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    tags: dict[str, str] | None = None,
    run_name: str | None = None,
    champion: bool = False,
) -> tuple[str, str]:
    """Log ``policy_bytes`` as a pyfunc model in a new run and register it under
    :func:`model_name`; return ``(run_id, version)``. ``champion`` also moves the alias."""
    import mlflow
    import mlflow.pyfunc

    from training.pyfunc import POLICY_ARTIFACT, POLICY_FILE  # pyfunc imports mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    experiment_id = _experiment_id(tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / POLICY_FILE
        path.write_bytes(policy_bytes)
        all_tags = {"decision_point": decision_point, "policy_kind": kind, **(tags or {})}
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=all_tags) as run:
            if params:
                mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
            info = mlflow.pyfunc.log_model(
                name="policy",
                python_model=str(Path(__file__).with_name("pyfunc_model.py")),
                artifacts={POLICY_ARTIFACT: str(path)},
                pip_requirements=["maestro-nba"],
                registered_model_name=model_name(decision_point),
                # tags of the logged model, and of the registered version it creates
                tags={"policy_kind": kind, "decision_point": decision_point},
            )
            if metrics:
                # after the model, linked to it in the same batch: logged before it,
                # log_model would re-read every metric's history to link them (one
                # query per metric, most of the registration's time)
                mlflow.log_metrics(
                    {k: float(v) for k, v in metrics.items()}, model_id=info.model_id
                )
    version = str(info.registered_model_version)
    if champion:
        set_champion(decision_point, version, tracking_uri)
    return run.info.run_id, version


def set_champion(decision_point: str, version: str | int, tracking_uri: str) -> None:
    """Point the ``champion`` alias of ``decision_point`` at ``version`` (promote/rollback)."""
    client(tracking_uri).set_registered_model_alias(
        model_name(decision_point), CHAMPION, str(version)
    )


def champion_version(
    decision_point: str, tracking_uri: str, mlflow_client: Any = None
) -> ChampionRef | None:
    """The champion's version and kind, or ``None`` when there is no champion yet."""
    from mlflow.exceptions import MlflowException

    c = mlflow_client or client(tracking_uri)
    try:
        mv = c.get_model_version_by_alias(model_name(decision_point), CHAMPION)
    except MlflowException as exc:
        if getattr(exc, "error_code", "") in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            return None
        raise
    return ChampionRef(decision_point, str(mv.version), (mv.tags or {}).get("policy_kind", ""))


def load_version_bytes(decision_point: str, version: str, tracking_uri: str) -> bytes:
    """The saved policy bytes of one registered version.

    The download location is resolved through a client bound to ``tracking_uri`` (a
    ``models:/`` URI would be resolved against the process-wide registry URI instead)."""
    import os

    import mlflow.artifacts

    from training.pyfunc import POLICY_FILE  # pyfunc imports mlflow

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = client(tracking_uri).get_model_version_download_uri(model_name(decision_point), version)
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=tmp, tracking_uri=tracking_uri
        )
        found = sorted(Path(local).rglob(POLICY_FILE))
        if not found:
            raise FileNotFoundError(f"{model_name(decision_point)} v{version} has no {POLICY_FILE}")
        return found[0].read_bytes()


def load_champion_bytes(decision_point: str, tracking_uri: str) -> tuple[bytes, ChampionRef] | None:
    """The champion's policy bytes and reference, or ``None`` with no champion."""
    ref = champion_version(decision_point, tracking_uri)
    if ref is None:
        return None
    return load_version_bytes(decision_point, ref.version, tracking_uri), ref
