"""The policies in service: one per decision point, loaded from the MLflow ``champion``
alias, polled and swapped atomically.

- at start each decision point loads ``models:/maestro-<dp>@champion`` (the policy's
  saved bytes, see :mod:`training.tracking`); with no champion registered it serves a
  cold-start policy (``MAESTRO_COLD_START_KIND``, ``rules`` by default);
- every policy serves with at least its decision point's exploration floor from the
  catalog (``exploration_floor``): a champion registered with less is raised to it at
  load, so the logs keep the exploration that off-policy evaluation needs;
- a background thread polls the registry every ``poll_seconds`` (≤ 10 s); a new version
  is loaded and smoke-tested (it must decide over the decision point's catalog) *before*
  one dict assignment swaps it in, so no request sees a half-loaded policy, and an
  artefact that fails to load never replaces the running one;
- the fallback policy (``rules``: today's journey priorities) is always in memory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from policies.base import BasePolicy
from policies.catalog import Catalog
from policies.draw import raise_floor
from policies.registry import load_policy, make_policy
from policies.types import Action, Context
from training.tracking import champion_version, load_version_bytes, register_policy

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    policy: BasePolicy
    version: str
    source: str  # "champion" | "cold_start" | "fallback"


def journey_priorities(catalog: Catalog) -> dict[str, list[str]]:
    return catalog.journey_priorities()


def fallback_policy(catalog: Catalog) -> BasePolicy:
    """The ``rules`` policy with the catalog's journey priorities (always available)."""
    policy = make_policy("rules", priorities=journey_priorities(catalog))
    policy.version = "fallback"
    return policy


def cold_start_policy(kind: str, catalog: Catalog, decision_point: str | None = None) -> BasePolicy:
    """An untrained policy of ``kind`` (``rules`` gets the catalog's journey priorities);
    for a ``decision_point``, with at least its exploration floor from the catalog."""
    if kind == "rules":
        policy = make_policy("rules", priorities=journey_priorities(catalog))
    else:
        policy = make_policy(kind)
    if decision_point is not None:
        raise_floor(policy, catalog[decision_point].exploration_floor)
    return policy


def smoke_test(policy: BasePolicy, catalog: Catalog, decision_point: str) -> None:
    """Raise unless ``policy`` returns a pmf over the decision point's catalog actions."""
    actions = list(catalog[decision_point].actions) or [Action("smoke-agent", "agent", {})]
    ctx = Context("smoke-test", decision_point=decision_point)
    pmf = policy.pmf(ctx, actions)
    if len(pmf) != len(actions) or abs(float(sum(pmf)) - 1.0) > 1e-6:
        raise ValueError(f"smoke test: pmf {list(pmf)} is not a distribution over the catalog")


def load_registered(
    catalog: Catalog, decision_point: str, version: str, tracking_uri: str
) -> BasePolicy:
    """A registered version of ``decision_point``, ready to serve: loaded, raised to the
    decision point's exploration floor and smoke-tested (raises if any step fails)."""
    policy = load_policy(load_version_bytes(decision_point, version, tracking_uri))
    policy.version = version
    raise_floor(policy, catalog[decision_point].exploration_floor)
    smoke_test(policy, catalog, decision_point)
    return policy


class PolicyStore:
    """Champion policies per decision point with background polling (see module doc)."""

    def __init__(
        self,
        catalog: Catalog,
        tracking_uri: str | None,
        *,
        poll_seconds: float = 5.0,
        cold_start_kind: str = "rules",
    ) -> None:
        self.catalog = catalog
        self.tracking_uri = tracking_uri
        self.poll_seconds = poll_seconds
        self.cold_start_kind = cold_start_kind
        self.fallback = LoadedPolicy(fallback_policy(catalog), "fallback", "fallback")
        self._policies: dict[str, LoadedPolicy] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.on_swap: Callable[[str, LoadedPolicy], None] | None = None
        self.on_load_error: Callable[[str], None] | None = None
        self.loaded = False

    def get(self, decision_point: str) -> LoadedPolicy:
        """The policy serving ``decision_point`` (one dict read: swaps are atomic)."""
        loaded = self._policies.get(decision_point)
        return loaded if loaded is not None else self.fallback

    def start(self) -> PolicyStore:
        """Load every decision point's champion (or cold start), then start polling.

        A registry that cannot be read at start is a misconfiguration: it raises."""
        for name in self.catalog.names():
            loaded = self.tracking_uri is not None and self.refresh_one(name, initial=True)
            if not loaded and name not in self._policies:
                policy = cold_start_policy(self.cold_start_kind, self.catalog, name)
                self._policies[name] = LoadedPolicy(policy, policy.version, "cold_start")
        self.loaded = True
        if self.tracking_uri is not None:
            self._thread = threading.Thread(target=self._poll, daemon=True, name="policy-poll")
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def refresh(self) -> int:
        """Check every decision point once; return how many policies were swapped."""
        return sum(self.refresh_one(name) for name in self.catalog.names())

    def refresh_one(self, decision_point: str, initial: bool = False) -> bool:
        """Swap in the registry's champion for ``decision_point`` if it changed."""
        assert self.tracking_uri is not None
        ref = champion_version(decision_point, self.tracking_uri)  # registry errors raise
        current = self._policies.get(decision_point)
        if ref is None or (
            current is not None and current.source == "champion" and current.version == ref.version
        ):
            return False
        try:
            policy = load_registered(self.catalog, decision_point, ref.version, self.tracking_uri)
        except Exception as exc:  # a broken artefact never replaces the running policy
            logger.error(
                "policy store: %s v%s failed to load: %s", decision_point, ref.version, exc
            )
            if self.on_load_error is not None:
                self.on_load_error(decision_point)
            return False
        loaded = LoadedPolicy(policy, ref.version, "champion")
        self._policies[decision_point] = loaded  # the atomic swap
        if not initial:
            logger.info(
                "policy store: %s now serves %s v%s", decision_point, policy.kind, ref.version
            )
        if self.on_swap is not None:
            self.on_swap(decision_point, loaded)
        return True

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            for name in self.catalog.names():
                try:
                    self.refresh_one(name)
                except Exception as exc:  # registry unreachable: keep serving, retry later
                    logger.warning("policy store: cannot poll %s: %s", name, exc)


def ensure_cold_start_champions(
    catalog: Catalog, tracking_uri: str, kind: str = "rules"
) -> dict[str, str]:
    """Register an untrained ``kind`` policy as champion of every decision point that has
    none (``maestro init`` calls this; idempotent). Returns ``{decision_point: version}``
    of the champions registered now."""
    registered: dict[str, str] = {}
    for name in catalog.names():
        if champion_version(name, tracking_uri) is not None:
            continue
        policy = cold_start_policy(kind, catalog, name)
        _, version = register_policy(
            policy.save(),
            name,
            tracking_uri,
            kind=policy.kind,
            params=policy.params,
            run_name=f"cold-start-{name}",
            tags={"cold_start": "true"},
            champion=True,
        )
        registered[name] = version
    return registered
