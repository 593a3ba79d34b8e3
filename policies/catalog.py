"""The decision-point catalog: actions, rules and reward settings per decision point.

Loaded from YAML (the shipped default is ``policies/catalog.yaml``; a workspace
keeps its own copy). Validated once, at load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from policies.attribution import RewardDefinitions, parse_rewards
from policies.conditions import Condition, ConditionError, Scope, Source
from policies.contact_rules import Budget
from policies.errors import CatalogError, InvalidInputError, UnknownDecisionPointError
from policies.rules import RuleSet
from policies.types import Action, validate_actions

DEFAULT_CATALOG = "catalog.yaml"
ACTIVATIONS = ("decide", "required")
#: The exploration budget of a decision point whose catalog entry does not set one
#: (the value chosen with the simulator: README, "Exploration budget").
DEFAULT_EXPLORATION_FLOOR = 0.3


@dataclass(frozen=True)
class DecisionPoint:
    """One decision point: its catalog of actions, its rules and its reward window.

    Parameters
    ----------
    name: str
        The decision point's name (``decision_point`` of ``/decide``).
    actions: tuple of Action, length n_actions
        Its candidates, unique ids (may be empty: the request or the agent roster then
        brings them).
    rules: RuleSet
        Eligibility applied before every policy.
    reward_window_hours: float, default 72.0
        How long after a decision a reward still counts for learning.
    default_reward: float, default 0.0
        The reward of a decision that received none within the window.
    journey_priority: tuple of str
        Action ids best first: the ``rules`` policy's static journey order.
    activation: str, default ``"decide"``
        ``decide``: a contacting decision counts as a contact when it is answered;
        ``required``: only once the journey engine activates it (``POST
        /decisions/{event_id}/activate`` or a ``message_sent`` event), and an unactivated
        decision's budget reservation is released after the reward window.
    budgets: mapping of str to Budget
        Action id → its volume budget (``budget: {max: 1000, per: day}`` on the action).
    exploration_floor: float, default :data:`DEFAULT_EXPLORATION_FLOOR`
        The exploration budget of every policy serving here (cold start and champions):
        the share of decisions drawn uniformly among the eligible actions, in ``[0, 1]``.
        It keeps every action's logged probability at least ``floor / n_actions``, so the
        logs can evaluate other policies off-policy.
    rewards: RewardDefinitions
        Outcome event type → its reward, and the attribution rule sharing a conversion
        among the contacts before it (:mod:`policies.attribution`).
    """

    name: str
    actions: tuple[Action, ...]
    rules: RuleSet
    reward_window_hours: float = 72.0
    default_reward: float = 0.0
    journey_priority: tuple[str, ...] = ()
    activation: str = "decide"
    budgets: Mapping[str, Budget] = field(default_factory=dict)
    #: ``reward_window_hours`` in seconds (set from it: every decision reads it)
    reward_window_seconds: float = field(init=False, repr=False, compare=False)
    exploration_floor: float = DEFAULT_EXPLORATION_FLOOR
    rewards: RewardDefinitions = field(default_factory=RewardDefinitions)

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise CatalogError(f"activation must be one of {', '.join(ACTIVATIONS)}")
        object.__setattr__(self, "reward_window_seconds", self.reward_window_hours * 3600.0)


@dataclass(frozen=True)
class Catalog:
    """Every decision point of a workspace, by name; ``catalog[name]`` raises
    :class:`~policies.errors.UnknownDecisionPointError` for an unknown one.

    Parameters
    ----------
    decision_points: mapping of str to DecisionPoint
        Always holds ``default``.
    """

    decision_points: Mapping[str, DecisionPoint]

    def __getitem__(self, name: str) -> DecisionPoint:
        try:
            return self.decision_points[name]
        except KeyError:
            raise UnknownDecisionPointError(
                f"unknown decision point {name!r}; known: {sorted(self.decision_points)}",
                field="decision_point",
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self.decision_points

    def names(self) -> list[str]:
        """The decision points' names, sorted."""
        return sorted(self.decision_points)

    def journey_priorities(self) -> dict[str, list[str]]:
        """Every decision point's static journey order: the ``rules`` policy's input."""
        return {name: list(point.journey_priority) for name, point in self.decision_points.items()}


def _merge(base: Mapping[str, object], override: Mapping[str, object]) -> dict[str, object]:
    merged = dict(base)
    merged.update(override)
    return merged


def _floor(name: str, value: object) -> float:
    """A decision point's ``exploration_floor``, checked: a number in ``[0, 1]``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise CatalogError(
            f"decision point {name!r}: exploration_floor must be a number in [0, 1], got {value!r}"
        )
    return float(value)


def parse_catalog(data: Mapping[str, object], scope: Scope | None = None) -> Catalog:
    """Build a :class:`Catalog` from the parsed YAML mapping.

    Parameters
    ----------
    data: mapping
        ``decision_points`` (name → actions, rules, reward settings, journey priority)
        and optional ``defaults`` merged under every point (``rules`` key by key).

    Raises
    ------
    CatalogError
        On any malformed entry, or without a ``default`` decision point; a bad ``when``
        condition raises :class:`~policies.conditions.ConditionError` (``file:line: ...``).
    """
    if not isinstance(data, Mapping) or "decision_points" not in data:
        raise CatalogError("catalog: a top-level 'decision_points' mapping is required")
    defaults = dict(data.get("defaults") or {})
    default_rules = dict(defaults.pop("rules", {}) or {})
    points: dict[str, DecisionPoint] = {}
    for name, raw in (data["decision_points"] or {}).items():
        raw = dict(raw or {})
        cfg = _merge(defaults, {k: v for k, v in raw.items() if k != "rules"})
        rules_cfg = _merge(default_rules, raw.get("rules") or {})
        try:
            raw_actions = cfg.get("actions") or []
            actions = tuple(
                Action(a["id"], a["channel"], dict(a.get("features") or {})) for a in raw_actions
            )
            if actions:
                validate_actions(actions)
            budgets = {
                a["id"]: Budget.from_config(a["budget"]) for a in raw_actions if a.get("budget")
            }
        except (KeyError, TypeError, InvalidInputError, CatalogError) as exc:
            raise CatalogError(f"decision point {name!r}: bad action ({exc})") from exc
        priority = tuple(cfg.get("journey_priority") or ())
        unknown = set(priority) - {a.id for a in actions}
        if unknown:
            raise CatalogError(f"decision point {name!r}: journey_priority names {sorted(unknown)}")
        floor = _floor(name, cfg.get("exploration_floor", DEFAULT_EXPLORATION_FLOOR))
        source = scope.source if scope is not None else Source(DEFAULT_CATALOG)
        rewards = parse_rewards(name, cfg.get("rewards"), cfg.get("attribution"), source)
        try:
            points[name] = DecisionPoint(
                name=name,
                actions=actions,
                rules=RuleSet.from_config(rules_cfg, scope),
                reward_window_hours=float(cfg.get("reward_window_hours", 72.0)),
                default_reward=float(cfg.get("default_reward", 0.0)),
                journey_priority=priority,
                activation=str(cfg.get("activation", "decide")),
                budgets=budgets,
                exploration_floor=floor,
                rewards=rewards,
            )
        except ConditionError:
            raise
        except CatalogError as exc:
            raise CatalogError(f"decision point {name!r}: {exc}") from exc
    if "default" not in points:
        raise CatalogError("catalog: a 'default' decision point is required")
    return Catalog(points)


def load_catalog(
    path: str | Path | None = None,
    features: Mapping[str, type] | None = None,
    segments: Mapping[str, Condition] | None = None,
) -> Catalog:
    """Load the catalog at ``path``, or the one shipped with Maestro.

    Parameters
    ----------
    path: str or Path, optional
        A catalog YAML file; ``None`` loads ``policies/catalog.yaml``.
    features: mapping of str to type, optional
        The declared features: ``when`` conditions may name only these (unchecked if None).
    segments: mapping of str to Condition, optional
        The declared segments ``when`` conditions may name as ``segment.<name>``.
    """
    import yaml  # imported here: keep `import policies` light

    try:
        if path is None:
            text = resources.files("policies").joinpath(DEFAULT_CATALOG).read_text("utf-8")
        else:
            text = Path(path).read_text("utf-8")
        data = yaml.safe_load(text)
    except OSError as exc:
        raise CatalogError(f"catalog: cannot read {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise CatalogError(f"catalog: invalid YAML in {path}: {exc}") from exc
    source = Source(str(path or DEFAULT_CATALOG), text)
    return parse_catalog(data, Scope(source, features, segments))
