"""Triggers declared in ``$MAESTRO_HOME/triggers.yaml``: on an event, after a dwell or an
absence, decide at a decision point and deliver the decision::

    triggers:
      vip_on_pricing:                      # a dwell: on pricing, no other page_view for 2 min
        on: {type: page_view, when: ["event.properties.page == 'pricing'", "segment.vip"]}
        dwell: {seconds: 120, cancel_on: [{type: page_view}]}
        decide: {decision_point: churn_risk}
        deliver: crm_hook
      abandoned_cart:                      # an absence, then a sequence
        on: {type: cart_updated, when: ["event.properties.cart_value > 0"]}
        dwell: {seconds: 3600, cancel_on: [{type: purchase}]}
        decide: {decision_point: default, context: {reason: cart}}
        deliver: engine_stream
        then:                              # later steps, seconds after the same event
          - {seconds: 86400, decide: {decision_point: default}, deliver: crm_hook}

``when`` lists expressions (:mod:`policies.conditions`) over ``event.*``, ``customer.*``
and ``segment.*`` that must all hold. ``dwell.cancel_on`` lists the events (a type and an
optional ``when``) that cancel the trigger's pending steps for that customer: "no other
``page_view`` for 2 minutes" and "no ``purchase`` within an hour" are both a dwell with a
``cancel_on``. Without ``dwell`` the first step fires at once. ``decide.context`` is the
``/decide`` request context; ``deliver`` names a key of ``destinations:``.

:func:`load_triggers` checks everything at start-up; a problem raises
:class:`~serving.errors.TriggerConfigError` with one line ``file:line: problem`` and
nothing is loaded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policies.catalog import Catalog
from policies.conditions import (
    Condition,
    ConditionError,
    Source,
    compile_condition,
    probe_event,
)
from serving.errors import TriggerConfigError

_NAME = re.compile(r"^[A-Za-z_]\w*$")
_TRIGGER_KEYS = frozenset({"on", "dwell", "decide", "deliver", "then"})
_STEP_KEYS = frozenset({"seconds", "decide", "deliver"})
#: the longest wait a step may declare (a year)
MAX_SECONDS = 365 * 86_400.0
_SAMPLE = {"str": "", "number": 0.0, "int": 0, "bool": False, "channel": "email"}


@dataclass(frozen=True)
class EventMatch:
    """An event type and the conditions (all must hold) an event of it must meet."""

    type: str
    when: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Step:
    """One decision of a trigger: ``seconds`` after the event, decided at
    ``decision_point`` with ``context`` and delivered to ``deliver``."""

    seconds: float
    decision_point: str
    context: Mapping[str, Any]
    deliver: str


@dataclass(frozen=True)
class Trigger:
    """One declared trigger: ``on`` starts it, ``steps`` (at least one, by time) fire
    unless an event of ``cancel_on`` comes first."""

    name: str
    on: EventMatch
    steps: tuple[Step, ...]
    cancel_on: tuple[EventMatch, ...] = ()

    @property
    def conditions(self) -> tuple[Condition, ...]:
        return (*self.on.when, *(c for m in self.cancel_on for c in m.when))


@dataclass(frozen=True)
class _Scope:
    source: Source
    catalog: Catalog
    features: Mapping[str, type]
    segments: tuple[str, ...]
    destinations: frozenset[str]
    event_types: Mapping[str, Mapping[str, Any]]

    def at(self, within: str, needle: str, problem: str) -> TriggerConfigError:
        return self.fail(needle, problem, within)

    def fail(self, needle: str, problem: str, within: str = "") -> TriggerConfigError:
        """The one-line error, at the first line holding ``needle`` after the trigger
        ``within``'s own line (the problem names the trigger)."""
        text = self.source.text or ""
        start = max(0, text.find(f"{within}:")) if within else 0
        # a key at the start of its own line first, else anywhere after the trigger
        keyed = re.compile(rf"^[ \t-]*{re.escape(needle)}", re.MULTILINE).search(text, start)
        index = keyed.start() if keyed else text.find(needle, start)
        if index < 0:
            index = text.find(needle)
        if index < 0:
            return TriggerConfigError(f"{self.source.path}: {problem}")
        return TriggerConfigError(f"{self.source.path}:{text.count(chr(10), 0, index) + 1}: "
                                  f"{problem}")


def load_triggers(
    path: str | Path,
    catalog: Catalog,
    features: Mapping[str, type],
    segments: Mapping[str, Condition],
    event_types: Mapping[str, Mapping[str, Any]],
) -> dict[str, Trigger]:
    """The ``triggers:`` of the file at ``path`` (none when it or the section is absent),
    checked against the catalog's decision points, the declared ``features`` (name → type),
    ``segments``, the ``event_types`` (type → its properties' specs, for typed samples)
    and the file's ``destinations:`` names."""
    import yaml  # imported here: start-up only

    path = Path(path)
    if not path.exists():
        return {}
    text = path.read_text("utf-8")
    try:
        data = yaml.load(text, Loader=_loader()) or {}  # a SafeLoader
    except yaml.YAMLError as exc:  # load_segments reports the line; keep one wording
        raise TriggerConfigError(f"{path}: invalid YAML ({exc})".splitlines()[0]) from exc
    if not isinstance(data, Mapping) or data.get("triggers") is None:
        return {}
    destinations = data.get("destinations") or {}
    scope = _Scope(
        Source(str(path), text), catalog, features, tuple(segments),
        frozenset(destinations) if isinstance(destinations, Mapping) else frozenset(),
        event_types,
    )
    raw = data["triggers"]
    if not isinstance(raw, Mapping):
        raise scope.fail("triggers:", "triggers must be a mapping of name to trigger")
    return {name: _trigger(scope, name, spec) for name, spec in raw.items()}


def _loader() -> Any:
    """A safe YAML loader for which only ``true``/``false`` are booleans: YAML 1.1 reads
    the issue's ``on:`` key (and ``yes``, ``no``, ``off``) as one."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"),
    )
    return Loader


def _trigger(scope: _Scope, name: Any, spec: Any) -> Trigger:
    if not isinstance(name, str) or not _NAME.match(name):
        raise scope.at(name, f"{name}:", f"trigger name {name!r} must be an identifier")
    where = f"{name}:"
    if not isinstance(spec, Mapping):
        raise scope.at(name, where, f"trigger {name!r} must be a mapping "
                       "(on, dwell, decide, deliver)")
    extra = sorted(set(spec) - _TRIGGER_KEYS)
    if extra:
        raise scope.at(name, f"{extra[0]}:", f"trigger {name!r}: unknown key {extra[0]!r} "
                         f"(expected {', '.join(sorted(_TRIGGER_KEYS))})")
    for key in ("on", "decide", "deliver"):
        if key not in spec:
            raise scope.at(name, where, f"trigger {name!r}: missing {key!r}")
    on = _match(scope, name, spec["on"], "on")
    dwell = spec.get("dwell") or {}
    if not isinstance(dwell, Mapping) or set(dwell) - {"seconds", "cancel_on"}:
        raise scope.at(name, "dwell:", f"trigger {name!r}: dwell must be "
                         "{seconds: N, cancel_on: [{type: T, when: [...]}]}")
    seconds = _seconds(scope, name, dwell.get("seconds", 0), "dwell.seconds")
    cancels = dwell.get("cancel_on") or []
    if not isinstance(cancels, list):
        raise scope.at(name, "cancel_on:", f"trigger {name!r}: cancel_on must be a list")
    cancel_on = tuple(_match(scope, name, c, "cancel_on") for c in cancels)
    first = _step(scope, name, {"seconds": seconds, "decide": spec["decide"],
                                "deliver": spec["deliver"]}, None)
    steps = [first]
    then = spec.get("then") or []
    if not isinstance(then, list):
        raise scope.at(name, "then:", f"trigger {name!r}: then must be a list of steps")
    for raw in then:
        step = _step(scope, name, raw, first)
        if step.seconds <= steps[-1].seconds:
            raise scope.at(name, "then:", f"trigger {name!r}: each step of then must come later "
                             f"than the one before ({step.seconds:g} s)")
        steps.append(step)
    return Trigger(name, on, tuple(steps), cancel_on)


def _match(scope: _Scope, name: str, raw: Any, key: str) -> EventMatch:
    if not isinstance(raw, Mapping) or "type" not in raw or set(raw) - {"type", "when"}:
        raise scope.at(name, f"{key}:", f"trigger {name!r}: {key} must be {{type: T, when: [...]}}")
    kind = raw["type"]
    if kind not in scope.event_types:
        raise scope.at(name, f"{kind}", f"trigger {name!r}: unknown event type {kind!r} "
                         f"(known: {', '.join(scope.event_types)})")
    when = raw.get("when") or []
    if isinstance(when, str):
        when = [when]
    if not isinstance(when, list):
        raise scope.at(name, "when:", f"trigger {name!r}: when must be a list of expressions")
    props = scope.event_types[kind].items()
    sample = {p: _SAMPLE.get(getattr(spec, "kind", ""), "") for p, spec in props}
    conditions = []
    for expression in when:
        try:
            cond = compile_condition(
                expression, scope.source, scope.features, scope.segments, events=True
            )
            probe_event(cond, scope.source, scope.features, kind, sample)
        except ConditionError as exc:
            raise TriggerConfigError(str(exc)) from exc
        conditions.append(cond)
    return EventMatch(kind, tuple(conditions))


def _step(scope: _Scope, name: str, raw: Any, first: Step | None) -> Step:
    if not isinstance(raw, Mapping) or set(raw) - _STEP_KEYS or "seconds" not in raw:
        raise scope.at(name, "then:", f"trigger {name!r}: a step of then must be "
                         "{seconds: N, decide: {...}, deliver: DEST}")
    seconds = _seconds(scope, name, raw["seconds"], "seconds")
    decide = raw.get("decide", {} if first else None)
    if not isinstance(decide, Mapping) or set(decide) - {"decision_point", "context"}:
        raise scope.at(name, "decide:", f"trigger {name!r}: decide must be "
                         "{decision_point: NAME, context: {...}}")
    point = decide.get("decision_point", first.decision_point if first else None)
    if point not in scope.catalog.decision_points:
        raise scope.at(name, f"{point}", f"trigger {name!r}: unknown decision point {point!r} "
                         f"(catalog: {', '.join(sorted(scope.catalog.decision_points))})")
    context = decide.get("context", first.context if first else {})
    if not isinstance(context, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str | int | float | bool) for k, v in context.items()
    ):
        raise scope.at(name, "context:", f"trigger {name!r}: decide.context must map names to "
                         "strings, numbers or booleans")
    deliver = raw.get("deliver", first.deliver if first else None)
    if not isinstance(deliver, str) or deliver not in scope.destinations:
        known = ", ".join(sorted(scope.destinations)) or "none declared"
        raise scope.at(name, f"{deliver}", f"trigger {name!r}: unknown destination {deliver!r} "
                         f"(destinations: {known})")
    return Step(seconds, point, dict(context), deliver)


def _seconds(scope: _Scope, name: str, value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
        0 <= value <= MAX_SECONDS
    ):
        raise scope.at(name, f"{value}", f"trigger {name!r}: {key} must be a number of seconds "
                         f"from 0 to {MAX_SECONDS:g}, not {value!r}")
    return float(value)
