"""Serving settings: one pydantic-settings object, read once at the edge and injected.

Nothing here runs at import time: :func:`get_settings` builds (and caches) the settings
when the CLI or a test asks for them, and the app receives them through its service.

Environment variables (the contract's three plus Maestro's own ``MAESTRO_*`` knobs):

- ``MAESTRO_HOME`` (default ``./maestro-data``): the workspace.
- ``MAESTRO_API_KEY``: comma-separated accepted keys (unset: no auth).
- ``MLFLOW_TRACKING_URI`` (default ``sqlite:///$MAESTRO_HOME/mlflow.db``).
- ``MAESTRO_TIME_BUDGET_MS`` (50), ``MAESTRO_KILL_SWITCH`` (false), ``MAESTRO_APPRENTICE``
  (false), ``MAESTRO_REWARD_MODE`` (``first`` | ``sum``), ``MAESTRO_POLL_SECONDS`` (5),
  ``MAESTRO_FLUSH_MS`` (200), ``MAESTRO_ROLL_SECONDS`` (10), ``MAESTRO_SECRET`` (else the
  workspace secret file ``$MAESTRO_HOME/secret``), ``MAESTRO_COLD_START_KIND`` (``rules``),
  ``MAESTRO_FEATURE_SOURCE`` (``feast`` | ``memory``), ``MAESTRO_MAX_BODY_BYTES`` (65536),
  ``MAESTRO_RAY_MAX_ONGOING_REQUESTS`` (64), ``MAESTRO_RAY_MAX_QUEUED_REQUESTS`` (512),
  ``MAESTRO_RAY_TEMP_DIR``, ``MAESTRO_RAY_REPLICA_MAXCONN`` (2),
  ``MAESTRO_RAY_QUEUE_LIFO`` (false), ``MAESTRO_ADMISSION_MAX_IN_FLIGHT`` (32),
  ``MAESTRO_ADMISSION_QUEUE_MS`` (50), ``MAESTRO_ADMISSION_RETRY_AFTER_S`` (1),
  ``MAESTRO_CATALOG_PATH`` (else ``$MAESTRO_HOME/catalog.yaml``),
  ``MAESTRO_EXPERIMENTS_PATH`` (else ``$MAESTRO_HOME/experiments.yaml`` if present; see
  :mod:`serving.experiments.variants`).
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the serving layer can be configured with."""

    model_config = SettingsConfigDict(env_prefix="MAESTRO_", extra="ignore", frozen=True)

    home: Path = Field(default=Path("./maestro-data"))
    #: accepted API keys; never logged (SecretStr hides them in repr)
    api_key: SecretStr | None = Field(default=None)
    mlflow_tracking_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "mlflow_tracking_uri")
    )
    catalog_path: Path | None = None
    experiments_path: Path | None = None
    secret: SecretStr | None = None

    time_budget_ms: float = Field(default=50.0, gt=0)
    kill_switch: bool = False
    apprentice: bool = False
    reward_mode: Literal["first", "sum"] = "first"
    poll_seconds: float = Field(default=5.0, gt=0, le=10)
    flush_ms: float = Field(default=200.0, gt=0, le=200)
    roll_seconds: float = Field(default=10.0, gt=0)
    cold_start_kind: str = "rules"
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    #: Ray Serve: requests in flight per replica, and queued per caller before ``503``
    ray_max_ongoing_requests: int = Field(default=64, ge=1)
    ray_max_queued_requests: int = Field(default=512, ge=-1)
    ray_temp_dir: str | None = None
    #: Ray Serve's HAProxy ingress sheds overload (:mod:`serving.engines.haproxy_shed`): requests
    #: let into one replica at once (0: HAProxy does not shed), and the queue's order
    #: (``True``: newest first)
    ray_replica_maxconn: int = Field(default=2, ge=0)
    ray_queue_lifo: bool = False
    #: admission control, both engines (:mod:`serving.api.admission`): requests inside the
    #: app at once (0: off), the longest a request may wait on the event loop before it
    #: is refused (0: off), and the ``Retry-After`` of the ``503``
    admission_max_in_flight: int = Field(default=32, ge=0)
    admission_queue_ms: float = Field(default=50.0, ge=0)
    admission_retry_after_s: int = Field(default=1, ge=1)
    #: feature source: ``feast`` (the workspace's Feast repo) or ``memory`` (tests, demos)
    feature_source: Literal["feast", "memory"] = "feast"
    #: in-process cache of Feast's SQLite rows (:mod:`features.cache`): customers kept
    #: (0: off) and the bound on a direct write to Feast that bypassed Maestro
    feature_cache_size: int = Field(default=200_000, ge=0)
    feature_cache_seconds: float = Field(default=60.0, gt=0)

    @field_validator("home", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    # ------------------------------------------------------------ derived values
    @property
    def api_keys(self) -> frozenset[str]:
        """The accepted keys (empty: authentication off)."""
        if self.api_key is None:
            return frozenset()
        return frozenset(k.strip() for k in self.api_key.get_secret_value().split(",") if k.strip())

    @property
    def admission(self) -> dict[str, float]:
        """Keyword arguments of :class:`serving.api.admission.AdmissionMiddleware`."""
        return {
            "max_in_flight": self.admission_max_in_flight,
            "queue_budget_ms": self.admission_queue_ms,
            "retry_after_s": self.admission_retry_after_s,
        }

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def feature_repo(self) -> Path:
        return self.home / "feature_repo"

    @property
    def catalog_file(self) -> Path | None:
        """The catalog to load: explicit path, else the workspace copy, else the shipped one."""
        if self.catalog_path is not None:
            return self.catalog_path
        candidate = self.home / "catalog.yaml"
        return candidate if candidate.exists() else None

    @property
    def experiments_file(self) -> Path | None:
        """The experiments config: explicit path, else the workspace's, else none."""
        if self.experiments_path is not None:
            return self.experiments_path
        candidate = self.home / "experiments.yaml"
        return candidate if candidate.exists() else None

    def signing_key(self) -> bytes:
        """The workspace secret that signs event ids (created once, shared by replicas)."""
        if self.secret is not None:
            return self.secret.get_secret_value().encode()
        return workspace_secret(self.home)


def workspace_secret(home: Path) -> bytes:
    """Read ``home/secret``, creating it atomically (0600) the first time."""
    path = home / "secret"
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    home.mkdir(parents=True, exist_ok=True)
    tmp = home / f".secret.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))
    try:
        os.link(tmp, path)  # atomic: the first process to link wins, others read its secret
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes().strip()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once (the edge calls this)."""
    return Settings()
