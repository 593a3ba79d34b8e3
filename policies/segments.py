"""Dynamic segments: named conditions over a customer's features, declared in
``$MAESTRO_HOME/triggers.yaml``::

    segments:
      vip: "customer.lifetime_value > 2000 && customer.tenure_days > 365"

A segment is evaluated at decide time (:mod:`policies.conditions`); ``when`` rules read it
as ``segment.<name>``. A segment may not name another segment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from policies.conditions import Condition, ConditionError, Source, compile_condition

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
