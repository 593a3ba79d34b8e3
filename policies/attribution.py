"""Outcomes as rewards: a decision point's reward definitions and its attribution rule.

A decision point's ``rewards`` map an outcome event type to a number or to a CEL expression
over the event's properties (``purchase: properties.value``, ``message_clicked: 0.2``,
``unsubscribed: -1``). Its ``attribution`` says how a conversion that follows several
contacts is shared among their decisions:

- ``last_touch``: all of it to the latest contact;
- ``linear``: equal shares;
- ``time_decay``: shares proportional to ``2 ** (-age / half_life)``, ``age`` being the
  time from the contact to the conversion (a contact one half-life older weighs half).

Shares always sum to 1 over the contacts given. Each contact is given only while the
conversion falls within its own decision's reward window (the caller's job: it knows the
windows). Everything here is checked once, at catalog load; a bad entry raises
:class:`~policies.errors.CatalogError` or, for an expression, a one-line
:class:`~policies.errors.ConditionError` naming the file and line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from policies.conditions import Source, variable
from policies.contact_rules import window_seconds
from policies.errors import CatalogError, OutcomeValueError

#: the outcome event types ``POST /events`` turns into rewards
OUTCOME_EVENTS = (
    "message_delivered", "message_opened", "message_clicked", "purchase", "unsubscribed",
)
#: outcomes about one message: joined to the latest contact on their channel, never shared
MESSAGE_OUTCOMES = frozenset(OUTCOME_EVENTS) - {"purchase"}
RULES = ("last_touch", "linear", "time_decay")
_PROPS = re.compile(r"(?<![\w.])properties\s*\.\s*([A-Za-z_]\w*)")
_STRINGS = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_IDENT = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\b(?!\s*\()")
_ALLOWED = frozenset({"true", "false", "null", "in", "has", "size", "int", "double"})


@dataclass(frozen=True)
class RewardValue:
    """One outcome type's reward: a constant, or a compiled expression over properties."""

    expression: str
    constant: float | None = None
    program: Any = None
    properties: tuple[str, ...] = ()

    def value(self, props: Mapping[str, Any]) -> float:
        """The reward of an outcome with ``props``; :class:`OutcomeValueError` naming the
        property when one the expression reads is missing or the result is not a finite
        number."""
        if self.constant is not None:
            return self.constant
        import cel

        values = {}
        for name in self.properties:
            v = props.get(name)
            if v is None or isinstance(v, bool) or not isinstance(v, int | float | str):
                raise OutcomeValueError(
                    f"properties.{name} is required by the reward {self.expression!r}",
                    field=f"properties.{name}",
                )
            values[variable("properties", name)] = v
        try:
            result = self.program.execute(cel.Context(values))
        except Exception as exc:
            raise OutcomeValueError(
                f"the reward {self.expression!r} cannot be computed ({exc})",
                field=f"properties.{self.properties[0]}" if self.properties else "properties",
            ) from None
        if isinstance(result, bool) or not isinstance(result, int | float) \
                or not math.isfinite(result):
            raise OutcomeValueError(
                f"the reward {self.expression!r} must be a finite number, got {result!r}",
                field=f"properties.{self.properties[0]}" if self.properties else "properties",
            )
        return float(result)


@dataclass(frozen=True)
class Attribution:
    """How a conversion is shared among the contacts before it (see the module docstring).

    Parameters
    ----------
    rule: str, default ``"last_touch"``
        One of :data:`RULES`.
    half_life_seconds: float, default one day
        ``time_decay`` only: the age at which a contact weighs half a fresh one.
    """

    rule: str = "last_touch"
    half_life_seconds: float = 86_400.0

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise CatalogError(f"attribution rule must be one of {', '.join(RULES)}")
        if not self.half_life_seconds > 0:
            raise CatalogError("attribution half_life must be positive")

    def shares(self, touch_times: Sequence[float], conversion: float) -> list[float]:
        """Each contact's share of a conversion at ``conversion``, shape (n_touches,),
        aligned with ``touch_times`` (epoch seconds); sums to 1 (empty for no contacts).
        Ties for the latest contact under ``last_touch`` go to the one given last."""
        n = len(touch_times)
        if n == 0:
            return []
        if self.rule == "linear":
            return [1.0 / n] * n
        if self.rule == "last_touch":
            latest = max(range(n), key=lambda i: (touch_times[i], i))
            return [1.0 if i == latest else 0.0 for i in range(n)]
        weights = [
            2.0 ** (-max(0.0, conversion - t) / self.half_life_seconds) for t in touch_times
        ]
        total = sum(weights)
        return [w / total for w in weights]


@dataclass(frozen=True)
class RewardDefinitions:
    """A decision point's ``rewards`` (outcome type → :class:`RewardValue`) and its
    :class:`Attribution`."""

    values: Mapping[str, RewardValue] = field(default_factory=dict)
    attribution: Attribution = field(default_factory=Attribution)

    def __bool__(self) -> bool:
        return bool(self.values)


def compile_reward(expression: Any, source: Source) -> RewardValue:
    """A reward entry: a number, or a CEL expression over ``properties.<key>`` compiled now
    (a bad one raises a one-line :class:`ConditionError` naming the file and line)."""
    if isinstance(expression, bool):
        raise source.fail(str(expression), f"reward {expression!r} must be a number or expression")
    if isinstance(expression, int | float):
        if not math.isfinite(expression):
            raise source.fail(str(expression), f"reward {expression!r} must be finite")
        return RewardValue(str(expression), constant=float(expression))
    if not isinstance(expression, str) or not expression.strip():
        raise source.fail(str(expression), f"reward {expression!r} must be a number or expression")
    import cel

    bare = _STRINGS.sub("''", expression)
    names = tuple(sorted(set(_PROPS.findall(bare))))
    stray = {n for n in _IDENT.findall(_PROPS.sub("", bare)) if n not in _ALLOWED}
    if stray:
        raise source.fail(expression, f"reward {expression!r}: unknown name "
                          f"{sorted(stray)[0]!r} (use properties.<key>)")
    flat = _PROPS.sub(lambda m: variable("properties", m.group(1)), expression)
    try:
        cel.compile(expression)  # the caller's text first, so that positions are its own
        program = cel.compile(flat)
    except Exception as exc:
        detail = " ".join(str(exc).split("\n")[0].split())
        raise source.fail(expression, f"reward {expression!r}: syntax error ({detail})") from exc
    return RewardValue(expression, program=program, properties=names)


def parse_rewards(
    name: str, rewards: Any, attribution: Any, source: Source
) -> RewardDefinitions:
    """A decision point's ``rewards`` and ``attribution`` entries, checked."""
    if rewards is None:
        rewards = {}
    if not isinstance(rewards, Mapping):
        raise source.fail("rewards:", f"decision point {name!r}: rewards must map outcome "
                          "events to rewards")
    unknown = sorted(set(rewards) - set(OUTCOME_EVENTS))
    if unknown:
        raise source.fail(
            f"{unknown[0]}:", f"decision point {name!r}: rewards names {unknown[0]!r}; "
            f"outcome events are {', '.join(OUTCOME_EVENTS)}"
        )
    values = {kind: compile_reward(expr, source) for kind, expr in rewards.items()}
    cfg = attribution if attribution is not None else {}
    if isinstance(cfg, str):
        cfg = {"rule": cfg}
    if not isinstance(cfg, Mapping) or set(cfg) - {"rule", "half_life"}:
        raise source.fail("attribution:", f"decision point {name!r}: attribution must be "
                          f"{{rule: {'|'.join(RULES)}, half_life: <n>h}}")
    rule_name = str(cfg.get("rule", "last_touch"))
    try:
        half_life = window_seconds(cfg["half_life"]) if "half_life" in cfg else 86_400.0
    except CatalogError as exc:
        raise source.fail(f"half_life: {cfg['half_life']}",
                          f"decision point {name!r}: {exc}") from exc
    try:
        rule = Attribution(rule_name, half_life)
    except CatalogError as exc:
        raise source.fail(rule_name, f"decision point {name!r}: {exc}") from exc
    return RewardDefinitions(values, rule)
