"""Serving settings: one pydantic-settings object, read once at the edge and injected.

Nothing here runs at import time: :func:`get_settings` builds (and caches) the settings
when the CLI or a test asks for them, and the app receives them through its service.

Environment variables: each field is ``MAESTRO_<FIELD>`` (``MLFLOW_TRACKING_URI`` for the
tracking URI), with its type, default and ``description``; README's table of them is
generated from this class (``python -m serving.settings_doc``, ``make docs``) and checked by
``tests/test_readme_settings.py``, so a new field needs a description.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: filesystems pyarrow resolves a log dataset URI to (``pyarrow.fs.FileSystem.from_uri``)
LOG_DATASET_SCHEMES = ("file", "s3", "gs", "gcs", "abfs", "abfss", "hdfs", "viewfs")


class Settings(BaseSettings):
    """Everything the serving layer can be configured with."""

    model_config = SettingsConfigDict(env_prefix="MAESTRO_", extra="ignore", frozen=True)

    home: Path = Field(
        default=Path("./maestro-data"),
        description="the workspace: Feast repo and data, logs, MLflow store (made absolute once)",
    )
    #: accepted API keys; never logged (SecretStr hides them in repr)
    api_key: SecretStr | None = Field(
        default=None,
        description="comma-separated accepted keys (any one works, so keys rotate); when set, "
        "every endpoint but `/healthz` and `/metrics` needs `Authorization: Bearer <key>`",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "mlflow_tracking_uri"),
        description="where runs and the model registry live "
        "(unset: `sqlite:///$MAESTRO_HOME/mlflow.db`)",
    )
    catalog_path: Path | None = Field(
        default=None,
        description="the decision-point catalog (unset: `$MAESTRO_HOME/catalog.yaml`, "
        "else the shipped `policies/catalog.yaml`)",
    )
    experiments_path: Path | None = Field(
        default=None,
        description="the experiments file (unset: `$MAESTRO_HOME/experiments.yaml` if present)",
    )
    secret: SecretStr | None = Field(
        default=None,
        description="the key that signs event ids, shared by replicas "
        "(unset: the workspace's `$MAESTRO_HOME/secret`, made once)",
    )

    time_budget_ms: float = Field(
        default=50.0,
        gt=0,
        description="past it, the rules fallback answers with `degraded: true`",
    )
    kill_switch: bool = Field(default=False, description="serve `rules` only")
    apprentice: bool = Field(
        default=False, description="serve `rules`, log the learned policy's choice as a shadow"
    )
    reward_mode: Literal["first", "sum"] = Field(
        default="first",
        description="rewards of one event: the first counts, or every distinct one is summed",
    )
    poll_seconds: float = Field(
        default=5.0,
        gt=0,
        le=10,
        description="how often the MLflow registry is polled for a new champion",
    )
    flush_ms: float = Field(
        default=200.0,
        gt=0,
        le=200,
        description="the event log's group-commit window (on disk within it)",
    )
    roll_seconds: float = Field(
        default=10.0, gt=0, description="how often the spool is rolled into the Parquet logs"
    )
    cold_start_kind: str = Field(
        default="rules", description="the policy kind `maestro init` registers as first champion"
    )
    max_body_bytes: int = Field(
        default=64 * 1024, ge=1024, description="larger request bodies are refused (`413`)"
    )
    #: Ray Serve: requests in flight per replica, and queued per caller before ``503``
    ray_max_ongoing_requests: int = Field(
        default=64, ge=1, description="Ray Serve: requests in flight in one replica"
    )
    ray_max_queued_requests: int = Field(
        default=512,
        ge=-1,
        description="Ray Serve: requests queued per caller before `503` (-1: no bound)",
    )
    ray_temp_dir: str | None = Field(
        default=None,
        description="Ray Serve: the local cluster's temporary directory (unset: Ray's)",
    )
    #: Ray Serve's HAProxy ingress sheds overload (:mod:`serving.engines.haproxy_shed`)
    ray_replica_maxconn: int = Field(
        default=2,
        ge=0,
        description="Ray Serve: requests HAProxy lets into one replica at once; the rest wait "
        "at most `MAESTRO_ADMISSION_QUEUE_MS`, then get `503` (0: HAProxy does not shed)",
    )
    ray_queue_lifo: bool = Field(
        default=False,
        description="Ray Serve: HAProxy serves the newest waiting request first",
    )
    #: admission control, both engines (:mod:`serving.api.admission`)
    admission_max_in_flight: int = Field(
        default=32, ge=0, description="requests inside the app at once before refusing (0: off)"
    )
    admission_queue_ms: float = Field(
        default=50.0,
        ge=0,
        description="a request that waited longer than this is refused with `503` (0: off)",
    )
    admission_retry_after_s: int = Field(
        default=1, ge=1, description="the `Retry-After` of an overload `503`, in seconds"
    )
    feature_source: Literal["feast", "memory"] = Field(
        default="feast",
        description="`feast` (the workspace's Feast repo) or `memory` (tests, demos)",
    )
    #: in-process cache of Feast's SQLite rows (:mod:`features.cache`)
    feature_cache_size: int = Field(
        default=200_000,
        ge=0,
        description="customers whose Feast rows each process keeps (0: off); a write through "
        "Maestro is seen by every process at its next read",
    )
    feature_cache_seconds: float = Field(
        default=60.0,
        gt=0,
        description="bound on how long a change written straight into Feast by another tool "
        "may go unseen",
    )
    contact_store: Literal["sqlite", "redis"] = Field(
        default="sqlite",
        description="where contact history and budgets live: `sqlite` "
        "(`$MAESTRO_HOME/contacts.db`, every process of one machine) or `redis` "
        "(`MAESTRO_CONTACT_REDIS_URL`, every replica of every node)",
    )
    contact_redis_url: str | None = Field(
        default=None,
        description="the Redis of `MAESTRO_CONTACT_STORE=redis` (`redis://host:port/db`)",
    )

    @field_validator("contact_redis_url", "delivery_redis_url", "timer_redis_url", mode="after")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://host:port/db URL")
        return value

    @model_validator(mode="after")
    def _contact_store_reachable(self) -> Settings:
        if self.contact_store == "redis" and not self.contact_redis_url:
            raise ValueError("MAESTRO_CONTACT_STORE=redis needs MAESTRO_CONTACT_REDIS_URL")
        return self

    #: triggers (``triggers:`` of ``$MAESTRO_HOME/triggers.yaml``): where their timers live
    timer_store: Literal["sqlite", "redis"] = Field(
        default="sqlite",
        description="where the triggers' pending timers live: `sqlite` "
        "(`$MAESTRO_HOME/timers.db`, every process of one machine) or `redis` "
        "(`MAESTRO_TIMER_REDIS_URL`, every replica of every node)",
    )
    timer_redis_url: str | None = Field(
        default=None,
        description="the Redis of `MAESTRO_TIMER_STORE=redis` (`redis://host:port/db`)",
    )
    timer_poll_seconds: float = Field(
        default=0.05, gt=0, le=60,
        description="how often each replica claims the triggers' due timers (a trigger "
        "without a dwell fires at once)",
    )
    timer_lease_seconds: float = Field(
        default=30.0, gt=0, le=3600,
        description="how long a claimed timer is one replica's: if it dies mid-fire, "
        "another fires the timer this much later",
    )

    @model_validator(mode="after")
    def _timer_store_reachable(self) -> Settings:
        if self.timer_store == "redis" and not self.timer_redis_url:
            raise ValueError("MAESTRO_TIMER_STORE=redis needs MAESTRO_TIMER_REDIS_URL")
        return self

    #: cluster mode: shared state, Ray cluster, Feast registry (docs/deploy.md)
    state_url: SecretStr | None = Field(
        default=None,
        description="the replicas' shared state (reward and request-id index, erasure "
        "tombstones, experiment assignments) on PostgreSQL, `postgresql://user:pw@host/db` "
        "(unset: SQLite files under `$MAESTRO_HOME`, one host)",
    )
    ray_address: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MAESTRO_RAY_ADDRESS", "RAY_ADDRESS", "ray_address"),
        description="Ray Serve: the existing cluster to deploy into, `host:port` or `auto` "
        "(`RAY_ADDRESS` works too; unset: a private local cluster)",
    )
    ray_proxy_location: Literal["EveryNode", "HeadOnly"] = Field(
        default="EveryNode",
        description="Ray Serve in an existing cluster: an HTTP proxy on every node, or on the "
        "head only",
    )
    ray_max_replicas_per_node: int | None = Field(
        default=None,
        ge=1,
        description="Ray Serve: at most this many replicas on one node (1: one per node, "
        "so a node's loss takes one replica; unset: Ray spreads them)",
    )
    feast_registry_url: SecretStr | None = Field(
        default=None,
        description="Feast's SQL registry shared by every node, "
        "`postgresql+psycopg://user:pw@host/db` (unset: the repo's `registry.db` file)",
    )
    log_dataset: str | None = Field(
        default=None,
        description="the rolled decision and reward logs every node writes and `maestro "
        "train` reads: a path or URI (`file:///mnt/shared/logs`, `s3://bucket/logs`, `gs://`, "
        "`abfs://`, `hdfs://`; unset: `$MAESTRO_HOME/logs`)",
    )

    #: drift detectors and online learning (:mod:`serving.service.drift`)
    drift_delta: float = Field(
        default=0.002, gt=0, lt=1,
        description="ADWIN's confidence on reward residuals (smaller: fewer false alarms, "
        "later detection)",
    )
    drift_window: int = Field(
        default=500, ge=10,
        description="sampled decisions (one in eight) per feature-PSI window (the first is "
        "the reference); rewards forming the residual baseline are `drift_window` / 2",
    )
    online_learning: bool = Field(
        default=False,
        description="a `vw-cb` champion keeps learning from the rewards joined on its replica",
    )
    online_max_updates: int = Field(
        default=5_000, ge=1,
        description="online updates after which a replica stops learning and raises an "
        "`online_bound` alarm (a re-gate: `maestro train --every` retrains)",
    )

    #: delivery of triggered decisions (serving.delivery)
    delivery_store: Literal["sqlite", "redis"] = Field(
        default="sqlite",
        description="the delivery outbox: `sqlite` (`$MAESTRO_HOME/deliveries.db`, every "
        "process of one machine) or `redis` (`MAESTRO_DELIVERY_REDIS_URL`, every replica)",
    )
    delivery_redis_url: str | None = Field(
        default=None,
        description="the Redis of `MAESTRO_DELIVERY_STORE=redis`, and of `redis_stream` "
        "destinations that name no `redis_url` (`redis://host:port/db`)",
    )
    delivery_max_attempts: int = Field(
        default=8, ge=1, description="tries of one delivery before it is dead-lettered"
    )
    delivery_backoff_seconds: float = Field(
        default=0.5,
        gt=0,
        description="the first retry's backoff ceiling; it doubles per attempt (full jitter)",
    )
    delivery_backoff_max_seconds: float = Field(
        default=60.0, gt=0, description="the largest backoff ceiling between two tries"
    )
    delivery_timeout_seconds: float = Field(
        default=5.0, gt=0, description="one webhook POST or stream append, at most"
    )
    delivery_lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description="a delivery in flight is held this long; past it (its worker died) "
        "another worker takes it",
    )
    delivery_poll_seconds: float = Field(
        default=0.2,
        gt=0,
        le=10,
        description="how often a worker looks for retries come due and other processes' "
        "deliveries (its own are sent at once)",
    )

    @model_validator(mode="after")
    def _delivery_consistent(self) -> Settings:
        if self.delivery_store == "redis" and not self.delivery_redis_url:
            raise ValueError("MAESTRO_DELIVERY_STORE=redis needs MAESTRO_DELIVERY_REDIS_URL")
        if self.delivery_lease_seconds <= self.delivery_timeout_seconds:
            raise ValueError("MAESTRO_DELIVERY_LEASE_SECONDS must exceed "
                             "MAESTRO_DELIVERY_TIMEOUT_SECONDS (a send outliving its lease "
                             "could be sent twice)")
        if self.delivery_backoff_max_seconds < self.delivery_backoff_seconds:
            raise ValueError("MAESTRO_DELIVERY_BACKOFF_MAX_SECONDS must be at least "
                             "MAESTRO_DELIVERY_BACKOFF_SECONDS")
        return self

    @field_validator("home", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @field_validator("state_url", mode="after")
    @classmethod
    def _postgres_state(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("postgresql://", "postgres://")
        ):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("log_dataset", mode="after")
    @classmethod
    def _dataset_scheme(cls, value: str | None) -> str | None:
        if value is not None and "://" in value:
            scheme = value.split("://", 1)[0]
            if scheme not in LOG_DATASET_SCHEMES:
                known = ", ".join(f"{s}://" for s in LOG_DATASET_SCHEMES)
                raise ValueError(f"unknown scheme {scheme}:// (known: {known})")
        return value

    @field_validator("feast_registry_url", mode="after")
    @classmethod
    def _sql_registry(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("postgresql"):
            raise ValueError("must be a postgresql+psycopg:// URL")
        return value

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
        """This node's logs: its replicas' spools (and the rolled logs by default)."""
        return self.home / "logs"

    @property
    def timers_db(self) -> Path:
        """The embedded timer store (``timer_store = sqlite``)."""
        return self.home / "timers.db"

    @property
    def log_location(self) -> str:
        """The rolled logs' dataset, a path or URI (``MAESTRO_LOG_DATASET``)."""
        return self.log_dataset or str(self.logs_dir)

    @property
    def contacts_db(self) -> Path:
        """The embedded contact store (``contact_store = sqlite``)."""
        return self.home / "contacts.db"

    @property
    def deliveries_db(self) -> Path:
        """The embedded delivery outbox (``delivery_store = sqlite``)."""
        return self.home / "deliveries.db"

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
