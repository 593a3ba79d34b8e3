"""One condition language for rules and segments: CEL (Common Expression Language).

An expression reads ``customer.<feature>`` (a declared feature), ``context.<key>`` (the
request context) and ``segment.<name>`` (a declared segment, true or false), for example
``customer.lifetime_value > 2000 && customer.tenure_days > 365``. CEL is evaluated by the
Rust engine of ``common-expression-language``: it cannot reach Python objects, loops or
I/O, never coerces types silently, and reports syntax errors by line and column.

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

from policies.errors import CatalogError

#: the variables an expression may read
ROOTS = ("customer", "context", "segment")
_STRINGS = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_NAMES = re.compile(r"(?<![\w.])(customer|context|segment)\s*\.\s*([A-Za-z_]\w*)")
_IDENT = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\b(?!\s*\()")
_KEYWORDS = frozenset({"true", "false", "null", "in", *ROOTS})
_PROBE: dict[type, Any] = {bool: False, int: 0, float: 0.0, str: ""}


class ConditionError(CatalogError):
    """A condition that cannot be loaded: ``<file>:<line>: <problem>`` (exit 2)."""


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
) -> Condition:
    """Compile ``expression``; names are checked against ``features`` (name → type) and
    ``segments`` when given. Raises :class:`ConditionError` naming the file and line."""
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
            "(use customer.<feature>, context.<key> or segment.<name>)",
        )
    if features is not None:
        unknown = sorted(names["customer"] - set(features))
        if unknown:
            problem = f"condition {expression!r}: unknown feature {unknown[0]!r}"
            raise source.fail(expression, problem)
    if segments is not None:
        unknown = sorted(names["segment"] - set(segments))
        if unknown:
            problem = f"condition {expression!r}: unknown segment {unknown[0]!r}"
            raise source.fail(expression, problem)
    try:
        program = cel.compile(expression)
    except Exception as exc:
        detail = " ".join(str(exc).split("\n")[0].split())
        raise source.fail(expression, f"condition {expression!r}: syntax error ({detail})") from exc
    condition = Condition(
        expression, program, frozenset(names["customer"]), frozenset(names["context"]),
        frozenset(names["segment"]),
    )
    if features is not None and not condition.context:
        _probe(condition, source, features)
    return condition


def _probe(condition: Condition, source: Source, features: Mapping[str, type]) -> None:
    """Evaluate once over typed sample values: a type mismatch or a non-boolean result
    shows here, at load, rather than as a silently false rule."""
    import cel

    customer = {n: _PROBE.get(features[n], "") for n in condition.customer}
    activation = cel.Context(
        {"customer": customer, "context": {}, "segment": dict.fromkeys(condition.segments, False)}
    )
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


def activation(
    context: Any, customer: Iterable[str], keys: Iterable[str],
    segments: Mapping[str, Condition],
) -> Any:
    """One ``cel.Context`` for a decision: the named features and context keys the
    customer and the request carry, and the truth of each segment in ``segments``."""
    import cel

    values = _inputs(context, customer, keys)
    if segments:
        base = cel.Context(values)
        values["segment"] = {name: cond.holds(base) for name, cond in segments.items()}
    return cel.Context(values)


def _inputs(context: Any, customer: Iterable[str], keys: Iterable[str]) -> dict[str, Any]:
    features = context.customer
    request = context.request
    return {
        "customer": {n: features[n] for n in customer if features.get(n) is not None},
        "context": {k: request[k] for k in keys if request.get(k) is not None},
    }


class SegmentSet:
    """Declared segments evaluated together: one activation per decision for all of them."""

    def __init__(self, segments: Mapping[str, Condition]) -> None:
        self.segments = dict(segments)
        conds = self.segments.values()
        self._customer = frozenset().union(*(c.customer for c in conds))
        self._keys = frozenset().union(*(c.context for c in conds))
        self._items = tuple(self.segments.items())

    def __bool__(self) -> bool:
        return bool(self._items)

    def members(self, context: Any) -> list[str]:
        """The names of the segments ``context``'s customer is in, in declaration order."""
        import cel

        act = cel.Context(_inputs(context, self._customer, self._keys))
        return [name for name, cond in self._items if cond.holds(act)]
