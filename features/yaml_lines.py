"""YAML read with line numbers, so a bad declaration is reported as ``file:line: problem``.

PyYAML's composer keeps each node's ``start_mark``; :func:`load_with_lines` builds plain
Python values from the node tree and remembers the (1-based) line of every mapping key
and list item, which the declaration's validation quotes in its one-line errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from features.errors import DeclarationError


class LineDict(dict[str, Any]):
    """A mapping that knows its own line and each key's line."""

    line: int = 0
    lines: dict[str, int]


class LineList(list[Any]):
    """A list that knows its own line and each item's line."""

    line: int = 0
    lines: list[int]


def _build(loader: Any, node: Any) -> Any:
    import yaml

    if isinstance(node, yaml.MappingNode):
        out = LineDict()
        out.line, out.lines = node.start_mark.line + 1, {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = str(key)
            out[key] = _build(loader, value_node)
            out.lines[key] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        items = LineList(_build(loader, item) for item in node.value)
        items.line = node.start_mark.line + 1
        items.lines = [item.start_mark.line + 1 for item in node.value]
        return items
    return loader.construct_object(node, deep=True)


def load_with_lines(path: Path) -> Any:
    """The YAML document at ``path`` as dicts/lists carrying line numbers; a YAML syntax
    error is a :class:`DeclarationError` at its line."""
    import yaml

    try:
        text = path.read_text()
    except OSError as exc:
        raise DeclarationError(f"{path.name}: cannot read: {exc.strerror}") from exc
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        return None if node is None else _build(loader, node)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 0
        raise DeclarationError(f"{path.name}:{line}: invalid YAML: {exc.problem}") from exc
    finally:
        loader.dispose()
