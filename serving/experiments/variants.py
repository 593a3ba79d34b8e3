"""Experiments per decision point: variants, a global holdout, sticky hashed assignment.

Declared in ``$MAESTRO_HOME/experiments.yaml`` (or ``MAESTRO_EXPERIMENTS_PATH``)::

    salt: spring-2026          # change it to re-randomise everyone (the only way to move people)
    holdout: 0.05              # global holdout: these customers get ``no_contact`` everywhere
    decision_points:
      cart_abandoned:
        variants:
          champion: 0.7        # the decision point's MLflow champion (follows promotions)
          rules: 0.2           # today's journey rules (the catalog's journey priorities)
          challenger: {share: 0.1, version: 3}   # a registered MLflow version, pinned

A decision point not listed serves ``champion`` to everyone outside the holdout. The
holdout applies at every decision point whose catalog has a ``no_contact`` action
(``agent_routing`` has none, so it is exempt). Shares within a decision point are
normalised over the customers outside the holdout.

Assignment. A customer's uniform draw is ``u = SHA-256(salt, scope, customer_id) / 2^64``
(scope ``holdout`` for the holdout, the decision point's name otherwise), mapped onto the
cumulative shares in declaration order: deterministic, independent across scopes, and
with the configured shares in expectation. The first assignment of each (salt, scope,
customer) is then written to a *sticky table* (``$MAESTRO_HOME/experiments.db``, SQLite
WAL, shared by every replica; first writer wins) and read back ever after, so changing
shares never moves an already-assigned customer — only customers seen for the first time
follow the new shares. A pure hash with per-variant bucket ranges cannot promise that when
a share *shrinks* (some of its buckets must go to another variant); the table can, at the
cost of one indexed read per (customer, scope) per process (cached in memory afterwards).
Changing ``salt`` starts a fresh assignment (the "unless asked" case).

The holdout is a deterministic arm: its ``no_contact`` is logged with probability 1.
Rules still run for every variant, the holdout included (its ``excluded`` list is real).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policies.baselines import HoldoutPolicy
from policies.catalog import Catalog, load_catalog
from policies.draw import raise_floor
from policies.registry import load_policy
from policies.types import NO_CONTACT_ID
from serving.errors import ExperimentConfigError
from serving.experiments.assignments import AssignmentTable
from serving.service.policy_store import LoadedPolicy, PolicyStore, cold_start_policy, smoke_test
from serving.state.ports import AssignmentStore
from training.lift import experiment_report, format_report
from training.tracking import load_version_bytes

HOLDOUT = "holdout"
CHAMPION = "champion"
RULES = "rules"


@dataclass(frozen=True)
class Variant:
    """One arm: ``policy`` is ``champion``, ``rules``, ``holdout`` or ``version``
    (then ``version`` names the registered MLflow version)."""

    name: str
    share: float
    policy: str
    version: str | None = None


@dataclass(frozen=True)
class ExperimentConfig:
    salt: str = "maestro"
    holdout: float = 0.0
    variants: Mapping[str, tuple[Variant, ...]] = field(default_factory=dict)

    def arms(self, decision_point: str) -> tuple[Variant, ...]:
        return self.variants.get(decision_point, (Variant(CHAMPION, 1.0, CHAMPION),))


def _variant(dp: str, name: str, raw: Any) -> Variant:
    spec = {"share": raw} if isinstance(raw, int | float) else raw
    if not isinstance(spec, Mapping) or "share" not in spec:
        raise ExperimentConfigError(f"{dp}.{name}: a share (number) or {{share: …}} is required")
    unknown = set(spec) - {"share", "version", "policy"}
    if unknown:
        raise ExperimentConfigError(f"{dp}.{name}: unknown keys {sorted(unknown)}")
    share = spec["share"]
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
        raise ExperimentConfigError(f"{dp}.{name}: share must be a number in [0, 1]")
    if name == HOLDOUT:
        raise ExperimentConfigError(f"{dp}: 'holdout' is global (top-level `holdout:`)")
    version = spec.get("version")
    policy = str(spec.get("policy", "version" if version is not None else name))
    if policy not in (CHAMPION, RULES, "version"):
        raise ExperimentConfigError(
            f"{dp}.{name}: policy must be champion, rules, or a registered `version`"
        )
    if policy == "version" and version is None:
        raise ExperimentConfigError(f"{dp}.{name}: a challenger needs `version: N`")
    return Variant(str(name), float(share), policy, None if version is None else str(version))


def parse_experiments(data: Any, catalog: Catalog) -> ExperimentConfig:
    """Validate the parsed YAML mapping against ``catalog``."""
    if not isinstance(data, Mapping):
        raise ExperimentConfigError("experiments: a mapping is required")
    unknown = set(data) - {"salt", "holdout", "decision_points"}
    if unknown:
        raise ExperimentConfigError(f"experiments: unknown keys {sorted(unknown)}")
    holdout = data.get("holdout", 0.0) or 0.0
    if isinstance(holdout, bool) or not isinstance(holdout, int | float) or not 0 <= holdout < 1:
        raise ExperimentConfigError(
            "experiments: holdout must be a share in [0, 1)", field="holdout"
        )
    variants: dict[str, tuple[Variant, ...]] = {}
    for dp, raw in (data.get("decision_points") or {}).items():
        if dp not in catalog:
            raise ExperimentConfigError(f"experiments: unknown decision point {dp!r}", field=dp)
        arms = (raw or {}).get("variants") if isinstance(raw, Mapping) else None
        if not isinstance(arms, Mapping) or not arms:
            raise ExperimentConfigError(
                f"{dp}: a non-empty `variants` mapping is required", field=dp
            )
        parsed = tuple(_variant(dp, str(name), spec) for name, spec in arms.items())
        if sum(v.share for v in parsed) <= 0:
            raise ExperimentConfigError(f"{dp}: the shares sum to 0", field=dp)
        variants[dp] = parsed
    return ExperimentConfig(str(data.get("salt", "maestro")), float(holdout), variants)


def load_experiments_config(path: Path, catalog: Catalog) -> ExperimentConfig:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text("utf-8"))
    except OSError as exc:
        raise ExperimentConfigError(f"experiments: cannot read {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ExperimentConfigError(f"experiments: invalid YAML in {path}: {exc}") from exc
    return parse_experiments(data or {}, catalog)


def unit_hash(salt: str, scope: str, customer_id: str) -> float:
    """The customer's uniform draw in [0, 1) for ``scope`` (SHA-256, first 64 bits)."""
    digest = hashlib.sha256(f"{salt}\x1f{scope}\x1f{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def pick(u: float, arms: Sequence[Variant]) -> str:
    """The arm whose cumulative share interval holds ``u`` (shares normalised)."""
    total = sum(a.share for a in arms)
    edge = 0.0
    for arm in arms:
        edge += arm.share / total
        if u < edge:
            return arm.name
    return arms[-1].name


@dataclass(frozen=True, slots=True)
class Arm:
    """The outcome of assignment: the variant's name and, unless it follows the champion,
    the policy serving it."""

    name: str
    loaded: LoadedPolicy | None  # None: the decision point's current champion

    @property
    def holdout(self) -> bool:
        return self.name == HOLDOUT

    def resolve(self, policies: PolicyStore, decision_point: str) -> LoadedPolicy:
        return self.loaded if self.loaded is not None else policies.get(decision_point)


class Experiments:
    """Assignment plus the policies of the non-champion variants."""

    def __init__(
        self,
        config: ExperimentConfig,
        catalog: Catalog,
        table: AssignmentTable,
        tracking_uri: str | None = None,
    ) -> None:
        self.config = config
        self.catalog = catalog
        self.table = table
        self.tracking_uri = tracking_uri
        self._rules = {dp: rules_arm(catalog, dp) for dp in catalog.names()}
        self._holdout = Arm(HOLDOUT, LoadedPolicy(HoldoutPolicy(), HOLDOUT, "experiment"))
        self._arms: dict[str, dict[str, Arm]] = {}
        self.holdout_points = frozenset(
            name
            for name in catalog.names()
            if any(a.id == NO_CONTACT_ID for a in catalog[name].actions)
        )
        for dp in catalog.names():
            self._arms[dp] = {v.name: Arm(v.name, self._load(dp, v)) for v in config.arms(dp)}

    def _load(self, dp: str, variant: Variant) -> LoadedPolicy | None:
        if variant.policy == CHAMPION:
            return None
        if variant.policy == RULES:
            return self._rules[dp]

        if self.tracking_uri is None:
            raise ExperimentConfigError(f"{dp}.{variant.name}: no MLflow registry to load from")
        try:
            policy = load_policy(load_version_bytes(dp, str(variant.version), self.tracking_uri))
            policy.version = str(variant.version)
            raise_floor(policy, self.catalog[dp].exploration_floor)  # as a champion is
            smoke_test(policy, self.catalog, dp)
        except Exception as exc:
            raise ExperimentConfigError(
                f"{dp}.{variant.name}: version {variant.version} cannot be served: {exc}", dp
            ) from exc
        return LoadedPolicy(policy, str(variant.version), "experiment")

    def variant_of(self, customer_id: str, decision_point: str) -> str:
        """The customer's variant at ``decision_point`` (sticky after the first call)."""
        cfg = self.config
        if cfg.holdout > 0 and decision_point in self.holdout_points:
            proposed = (
                HOLDOUT if unit_hash(cfg.salt, HOLDOUT, customer_id) < cfg.holdout else "-"
            )
            if self.table.get_or_set(f"{cfg.salt}:{HOLDOUT}", customer_id, proposed) == HOLDOUT:
                return HOLDOUT
        arms = cfg.arms(decision_point)
        if len(arms) == 1:
            return arms[0].name
        proposed = pick(unit_hash(cfg.salt, decision_point, customer_id), arms)
        return self.table.get_or_set(f"{cfg.salt}:{decision_point}", customer_id, proposed)

    def assign(self, customer_id: str, decision_point: str) -> Arm:
        name = self.variant_of(customer_id, decision_point)
        if name == HOLDOUT:
            return self._holdout
        arms = self._arms[decision_point]
        # a sticky variant since removed from the config falls back to the champion
        return arms.get(name) or Arm(name, None)

    def describe(self) -> dict[str, Any]:
        """The configuration as JSON (for ``/experiments``)."""
        return {
            "salt": self.config.salt,
            "holdout": self.config.holdout,
            "holdout_decision_points": sorted(self.holdout_points),
            "decision_points": {
                dp: [
                    {"name": v.name, "share": v.share, "policy": v.policy, "version": v.version}
                    for v in self.config.arms(dp)
                ]
                for dp in self.catalog.names()
            },
        }

    def close(self) -> None:
        self.table.close()


def rules_arm(catalog: Catalog, dp: str) -> LoadedPolicy:
    """The ``rules`` variant at ``dp``: the catalog's journey with exactly the decision
    point's exploration floor (not the ``rules`` policy's own default), so its logs can
    evaluate other policies as well as the champion's can."""
    policy = cold_start_policy(RULES, catalog)
    policy.exploration_floor = catalog[dp].exploration_floor
    return LoadedPolicy(policy, RULES, "experiment")


def load_experiments(
    path: Path | None,
    catalog: Catalog,
    store: Callable[[], AssignmentStore],
    tracking_uri: str | None,
) -> Experiments | None:
    """The workspace's experiments, or ``None`` without a config (everyone: ``champion``);
    ``store`` opens the sticky assignments' store (only when there are experiments)."""
    if path is None or not Path(path).exists():
        return None
    config = load_experiments_config(path, catalog)
    return Experiments(config, catalog, AssignmentTable(store()), tracking_uri)


def report_command(settings: Any, as_json: bool = False, mde: float | None = None) -> str:
    """``maestro report``: the lift report of the workspace's logs, as text or JSON."""
    import orjson

    catalog = load_catalog(settings.catalog_file)
    report = experiment_report(
        settings.log_location, catalog, reward_mode=settings.reward_mode, mde=mde
    )
    path = settings.experiments_file
    config = load_experiments_config(path, catalog) if path is not None else None
    if as_json:
        report["config"] = None if config is None else {
            "salt": config.salt,
            "holdout": config.holdout,
            "decision_points": {
                dp: [vars(v) for v in arms] for dp, arms in config.variants.items()
            },
        }
        return orjson.dumps(report, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    head = (
        f"experiments: {path} (salt {config.salt!r}, holdout {config.holdout:.1%})"
        if config is not None
        else "experiments: none configured (every decision is `champion`)"
    )
    return head + "\n" + format_report(report)
