"""Dynamic segments: named conditions over a customer's features, declared in
``$MAESTRO_HOME/triggers.yaml``::

    segments:
      vip: "customer.lifetime_value > 2000 && customer.tenure_days > 365"

A segment is evaluated at decide time (:mod:`policies.conditions`); ``when`` rules read it
as ``segment.<name>``. A segment may not name another segment. :class:`SegmentSet`
evaluates every segment once per decision, over one activation that also carries what the
``when`` rules read, so the rules reuse both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from policies.conditions import (
    Condition,
    ConditionError,
    Source,
    compile_condition,
    inputs,
    variable,
    variables,
)

TRIGGERS_FILE = "triggers.yaml"
_NAME = re.compile(r"^[A-Za-z_]\w*$")


def load_segments(
    path: str | Path, features: Mapping[str, type] | None = None
) -> dict[str, Condition]:
    """The segments of the triggers file at ``path`` (none when it does not exist).

    Raises :class:`~policies.conditions.ConditionError` (``file:line: problem``) on bad
    YAML, a bad name or a bad expression; nothing is returned half-loaded.
    """
    import yaml  # imported here: keep `import policies` light

    path = Path(path)
    if not path.exists():
        return {}
    text = path.read_text("utf-8")
    source = Source(str(path), text)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", exc)
        raise ConditionError(f"{path}{line}: invalid YAML ({problem})") from exc
    raw = data.get("segments") if isinstance(data, Mapping) else None
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise source.fail("segments:", "segments must be a mapping of name to expression")
    segments: dict[str, Condition] = {}
    for name, expression in raw.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise source.fail(f"{name}:", f"segment name {name!r} must be an identifier")
        segments[name] = compile_condition(expression, source, features, segments=())
    return segments


class SegmentSet(Mapping[str, Condition]):
    """The declared segments (name → condition), evaluated together once per decision.

    ``when`` rules built over this set :meth:`require` the features and context keys they
    read, so the one activation of a decision serves the segments and the rules: the
    decision's first call builds it (the serving layer asks for :meth:`members` before
    the rules split the candidates), later calls for the same context reuse it.
    """

    def __init__(self, segments: Mapping[str, Condition] | None = None) -> None:
        self._segments = dict(segments or {})
        self._customer: set[str] = set()
        self._keys: set[str] = set()
        for cond in self._segments.values():
            self.require(cond.customer, cond.context)
        self._items = tuple(
            (name, variable("segment", name), c) for name, c in self._segments.items()
        )
        # (context, activation, members) of the last decision, one tuple so that threads
        # never mix one request's context with another's activation
        self._memo: tuple[Any, Any, list[str]] | None = None

    def __getitem__(self, name: str) -> Condition:
        return self._segments[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._segments)

    def __len__(self) -> int:
        return len(self._segments)

    def require(self, customer: Iterable[str], keys: Iterable[str]) -> None:
        """Carry these features and context keys in every activation (at load only)."""
        self._customer.update(customer)
        self._keys.update(keys)
        self._pairs = (variables("customer", self._customer), variables("context", self._keys))

    def activation(self, context: Any) -> Any:
        """The ``cel.Context`` of ``context``'s decision, segments included."""
        return self._evaluate(context)[1]

    def members(self, context: Any) -> list[str]:
        """The names of the segments ``context``'s customer is in, in declaration order."""
        return self._evaluate(context)[2]

    def _evaluate(self, context: Any) -> tuple[Any, Any, list[str]]:
        memo = self._memo
        if memo is not None and memo[0] is context:
            return memo
        act = inputs(context, *self._pairs)
        truth = [(name, var, cond.holds(act)) for name, var, cond in self._items]
        for _, var, value in truth:  # added after every execution (see activation())
            act.add_variable(var, value)
        memo = self._memo = (context, act, [name for name, _, value in truth if value])
        return memo
