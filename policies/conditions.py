"""One condition language for rules and segments: CEL (Common Expression Language).

An expression reads ``customer.<feature>`` (a declared feature), ``context.<key>`` (the
request context), ``segment.<name>`` (a declared segment, true or false) and, in a
trigger's conditions only, ``event.type`` and ``event.properties.<name>`` (the event
that fired it), for example
``customer.lifetime_value > 2000 && customer.tenure_days > 365``. CEL is evaluated by the
Rust engine of ``common-expression-language``: it cannot reach Python objects, loops or
I/O, never coerces types silently, and reports syntax errors by line and column.

Each ``root.name`` is compiled as one flat variable ``root__name`` (:func:`variable`):
handing the engine flat values costs a fraction of converting nested maps, which
dominated an evaluation.

Expressions are compiled once, when the catalog or ``triggers.yaml`` is loaded. A bad one
(syntax, an unknown feature or segment, a type mismatch visible with typed sample values,
a result that is not true or false) raises :class:`ConditionError` whose message is one
line, ``<file>:<line>: <problem>``. At decide time an expression whose inputs are missing
(a feature the customer lacks, a context key not sent) or of the wrong type does not hold:
the same rule as ``eligibility`` (a missing feature fails).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from policies.errors import ConditionError

#: the variables an expression may read
ROOTS = ("customer", "context", "segment", "event")
#: what ``event.<name>`` may name
EVENT_FIELDS = ("type", "properties")
_STRINGS = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_NAMES = re.compile(r"(?<![\w.])(customer|context|segment|event)\s*\.\s*([A-Za-z_]\w*)")
_IDENT = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\b(?!\s*\()")
_KEYWORDS = frozenset({"true", "false", "null", "in", *ROOTS})
_PROBE: dict[type, Any] = {bool: False, int: 0, float: 0.0, str: ""}





def variable(root: str, name: str) -> str:
    """The flat CEL variable that stands for ``root.name`` in a compiled expression."""
    return f"{root}__{name}"


def _flatten(expression: str) -> str:
    """``expression`` with every ``root.name`` outside string literals made flat."""
    out, last = [], 0
    for match in _STRINGS.finditer(expression):
        out.append(_NAMES.sub(_flat, expression[last : match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(_NAMES.sub(_flat, expression[last:]))
    return "".join(out)


def _flat(match: re.Match[str]) -> str:
    return variable(match.group(1), match.group(2))


def line_of(text: str | None, needle: str) -> int:
    """The 1-based line of ``text`` where ``needle`` first appears (0 when unknown)."""
    if not text or not needle:
        return 0
    index = text.find(needle)
    return 0 if index < 0 else text.count("\n", 0, index) + 1


@dataclass(frozen=True)
class Source:
    """Where expressions come from, for one-line errors: the file's name and its text."""

    path: str
    text: str | None = None

    def fail(self, expression: str, problem: str) -> ConditionError:
        line = line_of(self.text, expression)
        where = f"{self.path}:{line}" if line else self.path
        return ConditionError(f"{where}: {problem}")


@dataclass(frozen=True)
class Condition:
    """One compiled expression and the names it reads."""

    expression: str
    program: Any
    customer: frozenset[str]
    context: frozenset[str]
    segments: frozenset[str]
    #: the ``event.<field>`` names read (a trigger's conditions only)
    event: frozenset[str] = frozenset()

    def holds(self, activation: Any) -> bool:
        """Whether the expression is true for ``activation`` (a ``cel.Context``); missing
        or mistyped inputs make it false."""
        try:
            return self.program.execute(activation) is True
        except Exception:
            return False


def compile_condition(
    expression: Any,
    source: Source,
    features: Mapping[str, type] | None = None,
    segments: Iterable[str] | None = None,
    events: bool = False,
) -> Condition:
    """Compile ``expression``; names are checked against ``features`` (name → type) and
    ``segments`` when given; ``event.*`` only where ``events`` (a trigger's conditions: a
    decision has no event). Raises :class:`ConditionError` naming the file and line."""
    import cel

    if not isinstance(expression, str) or not expression.strip():
        raise source.fail(str(expression), f"condition {expression!r} must be a non-empty string")
    bare = _STRINGS.sub("''", expression)
    names: dict[str, set[str]] = {root: set() for root in ROOTS}
    for root, name in _NAMES.findall(bare):
        names[root].add(name)
    stray = {n for n in _IDENT.findall(_NAMES.sub("", bare)) if n not in _KEYWORDS}
    stray -= {"has", "size", "int", "double", "string", "bool"}
    if stray:
        raise source.fail(
            expression, f"condition {expression!r}: unknown name {sorted(stray)[0]!r} "
            "(use customer.<feature>, context.<key>, segment.<name> or event.<field>)",
        )
    if features is not None:
        unknown = sorted(names["customer"] - set(features))
        if unknown:
            problem = f"condition {expression!r}: unknown feature {unknown[0]!r}"
            raise source.fail(expression, problem)
    if names["event"] and not events:
        problem = f"condition {expression!r}: event.* is known only in a trigger's conditions"
        raise source.fail(expression, problem)
    bad_event = sorted(names["event"] - set(EVENT_FIELDS))
    if bad_event:
        problem = (f"condition {expression!r}: unknown event field {bad_event[0]!r} "
                   "(use event.type or event.properties.<name>)")
        raise source.fail(expression, problem)
    if segments is not None:
        unknown = sorted(names["segment"] - set(segments))
        if unknown:
            problem = f"condition {expression!r}: unknown segment {unknown[0]!r}"
            raise source.fail(expression, problem)
    try:
        cel.compile(expression)  # the caller's text, so that positions are its own
        program = cel.compile(_flatten(expression))
    except Exception as exc:
        detail = " ".join(str(exc).split("\n")[0].split())
        raise source.fail(expression, f"condition {expression!r}: syntax error ({detail})") from exc
    condition = Condition(
        expression, program, frozenset(names["customer"]), frozenset(names["context"]),
        frozenset(names["segment"]), frozenset(names["event"]),
    )
    if features is not None and not condition.context and not condition.event:
        _probe(condition, source, features)
    return condition


def _probe(
    condition: Condition,
    source: Source,
    features: Mapping[str, type],
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Evaluate once over typed sample values (and the flat variables of ``extra``): a type
    mismatch or a non-boolean result shows here, at load, rather than as a silently false
    rule."""
    import cel

    values = {variable("customer", n): _PROBE.get(features[n], "") for n in condition.customer}
    values.update({variable("segment", n): False for n in condition.segments})
    values.update(extra or {})
    activation = cel.Context(values)
    try:
        result = condition.program.execute(activation)
    except TypeError as exc:
        detail = str(exc).split(".")[0]
        raise source.fail(
            condition.expression, f"condition {condition.expression!r}: type mismatch ({detail})"
        ) from exc
    except Exception:
        return  # e.g. a division by the zero sample: not a load-time error
    if not isinstance(result, bool):
        raise source.fail(
            condition.expression,
            f"condition {condition.expression!r}: must be true or false, "
            f"not {type(result).__name__}",
        )


def probe_event(
    condition: Condition,
    source: Source,
    features: Mapping[str, type],
    event_type: str,
    sample: Mapping[str, Any],
) -> None:
    """Check a trigger's condition over an event of ``event_type`` whose properties are the
    typed ``sample`` values (a type mismatch raises :class:`ConditionError`)."""
    _probe(condition, source, features, event_values(event_type, sample))


def event_values(event_type: str, properties: Mapping[str, Any]) -> dict[str, Any]:
    """The flat variables ``event.type`` and ``event.properties`` stand for."""
    return {variable("event", "type"): event_type,
            variable("event", "properties"): dict(properties)}


def with_event(activation: Any | None, event: Mapping[str, Any]) -> Any:
    """``activation`` (a new empty one when None) with the :func:`event_values` ``event``
    added."""
    import cel

    act = cel.Context({}) if activation is None else activation
    for name, value in event.items():
        act.add_variable(name, value)
    return act


@dataclass(frozen=True)
class Scope:
    """What expressions of one file may name: its source, the declared features (name →
    type; ``None`` skips the check) and the declared segments (name → condition)."""

    source: Source
    features: Mapping[str, type] | None = None
    segments: Mapping[str, Condition] | None = None

    def compile(self, expression: Any) -> Condition:
        segments = None if self.segments is None else tuple(self.segments)
        return compile_condition(expression, self.source, self.features, segments)


Pairs = tuple[tuple[str, str], ...]


def activation(
    context: Any, customer: Pairs, keys: Pairs, segments: tuple[tuple[str, Condition], ...]
) -> Any:
    """One ``cel.Context`` for a decision: the features and context keys named (as
    :func:`variables` pairs) that the customer and the request carry, and the truth of
    each ``(variable, condition)`` of ``segments``."""
    act = inputs(context, customer, keys)
    if segments:
        # all evaluated before any is added: an execution after each addition rebuilt the
        # engine's context every time (three times slower)
        truth = [(var, cond.holds(act)) for var, cond in segments]
        for var, value in truth:
            act.add_variable(var, value)
    return act


def variables(root: str, names: Iterable[str]) -> Pairs:
    """``(name, flat variable)`` pairs of ``root``'s ``names``, prepared once at load."""
    return tuple((n, variable(root, n)) for n in sorted(names))


def inputs(
    context: Any, customer: Pairs, keys: Pairs
) -> Any:
    """A ``cel.Context`` of the flat variables of the features and context keys named
    (``(name, variable)`` pairs) that ``context`` carries; absent ones stay undefined."""
    import cel

    features = context.customer
    request = context.request
    values = {var: v for n, var in customer if (v := features.get(n)) is not None}
    for k, var in keys:
        v = request.get(k)
        if v is not None:
            values[var] = v
    return cel.Context(values)
