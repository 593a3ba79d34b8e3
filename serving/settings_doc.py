"""README's table of environment variables, generated from :class:`serving.settings.Settings`.

``python -m serving.settings_doc`` (``make docs``) rewrites the block between
``<!-- settings:begin -->`` and ``<!-- settings:end -->`` in README.md; ``--check`` exits 1
when README's block differs from the generated one (``tests/test_readme_settings.py`` runs
the same comparison), so the table cannot drift from the settings object.
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from pathlib import Path

from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo

from serving.errors import SettingsDocError
from serving.settings import Settings

BEGIN = "<!-- settings:begin -->"
END = "<!-- settings:end -->"
README = Path(__file__).resolve().parent.parent / "README.md"


def env_name(name: str, field: FieldInfo) -> str:
    """The environment variable a field is read from (its first alias, else prefix + name)."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0].upper()
    if isinstance(alias, str):
        return alias.upper()
    prefix = str(Settings.model_config.get("env_prefix", ""))
    return f"{prefix}{name}".upper()


def type_name(annotation: object) -> str:
    """A reader's name for a field's type: ``bool``, ``path``, ``first | sum``, ``secret``…"""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return " \\| ".join(str(a) for a in args)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return " \\| ".join(type_name(a) for a in args if a is not type(None))
    if annotation is SecretStr:
        return "secret"
    if annotation is Path:
        return "path"
    return getattr(annotation, "__name__", str(annotation))


def default_text(value: object) -> str:
    """A field's default as README shows it (``unset`` for ``None``)."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, Path):
        return f"`{value.as_posix() if value.is_absolute() else './' + value.as_posix()}`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    return f"`{value}`"


def settings_table() -> str:
    """The markdown table: variable, type, default and description of every field."""
    rows = ["| variable | type | default | what |", "| --- | --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        if not field.description:
            raise SettingsDocError(f"Settings.{name} has no description", field=name)
        rows.append(
            f"| `{env_name(name, field)}` | {type_name(field.annotation)} "
            f"| {default_text(field.default)} | {field.description} |"
        )
    return "\n".join(rows)


def _split(text: str) -> tuple[str, str, str]:
    """README as (before the block, the block, after it); raises without both markers."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SettingsDocError(f"README has no {BEGIN} … {END} block", field="README.md")
    return text[: start + len(BEGIN)], text[start + len(BEGIN) : end], text[end:]


def readme_table(text: str) -> str:
    """The table README holds between the markers (stripped)."""
    return _split(text)[1].strip()


def with_table(text: str, table: str) -> str:
    """README's text with the block between the markers replaced by ``table``."""
    before, _, after = _split(text)
    return f"{before}\n{table}\n{after}"


def main(argv: list[str] | None = None) -> int:
    """Write the table into README (``--check``: only compare; exit 1 when they differ)."""
    parser = argparse.ArgumentParser(prog="python -m serving.settings_doc", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if README is stale")
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    table = settings_table()
    if args.check:
        if readme_table(text) != table:
            print(f"{args.readme}: settings table is stale; run `make docs`", file=sys.stderr)
            return 1
        return 0
    args.readme.write_text(with_table(text, table), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
