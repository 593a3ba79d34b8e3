"""The workspace's declared features: ``$MAESTRO_HOME/features.yaml``, read and checked.

One declaration gives the Feast definitions (:mod:`features.feast.definitions`), the
types and unknown-customer defaults the online reads use, the names rules and the log
may use, and the sources ``maestro load`` stages. The six built-in views and their
features (:mod:`features.schema`: what the rules, the simulator and the synthetic
generator read) are declared too, with today's names and types; custom features live
in views of their own, each fed by one declared source (one system of record).

Every problem is a :class:`~features.yaml_lines.DeclarationError` whose message is
``features.yaml:<line>: <problem>``; the whole file is checked before anything is built.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from features import schema
from features.declared_sources import SourceDecl, checked_mapping, parse_sources
from features.yaml_lines import DeclarationError, LineDict, load_with_lines

#: declared type name → Python type
TYPES: dict[str, type] = {"string": str, "int": int, "float": float, "bool": bool}
TYPE_NAMES: dict[type, str] = {v: k for k, v in TYPES.items()}
DEFAULT_FILE = Path(__file__).resolve().parent / "default_features.yaml"
#: the built-in views' batch data, written by ``maestro init`` (synthetic customers)
SYNTHETIC = "synthetic"
#: built-in features every workspace must declare: the business rules read them
RULE_FEATURES: frozenset[str] = frozenset(
    [f"consent_{c}" for c in schema.CHANNELS]
    + [f"sends_{c}_{w}" for c in schema.CHANNELS for w in ("7d", "30d")]
    + ["open_complaint", "overdue_invoice", "timezone", "language"]
)
_FEATURE_KEYS = {"name", "type", "default", "view", "builtin"}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class FeatureDecl:
    """One feature: its name, Python type, unknown-customer default and view."""

    name: str
    type: type
    default: Any
    view: str
    builtin: bool


@dataclass(frozen=True)
class ViewDecl:
    """One customer feature view: its TTL (0 = never stale), the source that feeds it
    (:data:`SYNTHETIC` for the built-in synthetic data) and whether it is a stream view."""

    name: str
    ttl_seconds: int
    source: str
    builtin: bool
    stream: bool = False
    push: bool = True


@dataclass(frozen=True)
class Declaration:
    """A whole, checked ``features.yaml``."""

    path: Path
    features: tuple[FeatureDecl, ...]
    views: tuple[ViewDecl, ...]
    sources: tuple[SourceDecl, ...] = field(default=())

    def types(self) -> dict[str, type]:
        """Feature name → Python type."""
        return {f.name: f.type for f in self.features}

    def defaults(self) -> dict[str, Any]:
        """Feature name → the value served for a customer the store does not know."""
        return {f.name: f.default for f in self.features}

    def view_features(self, view: str) -> list[FeatureDecl]:
        return [f for f in self.features if f.view == view]

    def custom(self) -> list[FeatureDecl]:
        return [f for f in self.features if not f.builtin]

    def source(self, name: str) -> SourceDecl:
        for src in self.sources:
            if src.name == name:
                return src
        known = ", ".join(s.name for s in self.sources) or "none declared"
        raise DeclarationError(f"{self.path.name}: no source {name!r} (sources: {known})")


def parse_duration(value: Any) -> int | None:
    """``30d``, ``2h``, ``45m``, ``10s`` or whole seconds → seconds; None if malformed."""
    if isinstance(value, bool):
        return None
    match = _DURATION.match(str(value).strip())
    return int(match.group(1)) * _UNITS[match.group(2)] if match else None


class _Checker:
    """Collects the declaration while checking it; raises on the first problem."""

    def __init__(self, path: Path) -> None:
        self.file = path.name
        self.path = path

    def fail(self, line: int, problem: str) -> DeclarationError:
        return DeclarationError(f"{self.file}:{line}: {problem}")

    def mapping(self, value: Any, line: int, what: str, allowed: set[str]) -> LineDict:
        return checked_mapping(self.fail, value, line, allowed, what)

    def typed(self, entry: LineDict, what: str) -> type:
        name = entry.get("type")
        if name not in TYPES:
            line = entry.lines.get("type", entry.line)
            raise self.fail(line, f"{what}: unknown type {name!r} (use {', '.join(TYPES)})")
        return TYPES[name]

    def value_of(self, typ: type, value: Any, line: int, what: str) -> Any:
        ok = isinstance(value, typ) and not (typ is not bool and isinstance(value, bool))
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not ok:
            raise self.fail(line, f"{what}: default {value!r} is not a {TYPE_NAMES[typ]}")
        return value

    def views(self, doc: LineDict) -> dict[str, ViewDecl]:
        raw = doc.get("views")
        if not isinstance(raw, LineDict):
            raise self.fail(doc.lines.get("views", 1), "views must be a mapping name → view")
        out: dict[str, ViewDecl] = {}
        for name, entry in raw.items():
            line = raw.lines[name]
            entry = self.mapping(entry, line, f"view {name}", {"ttl", "source"})
            if not _NAME.match(name):
                raise self.fail(line, f"view {name!r}: use lower_snake_case")
            ttl = parse_duration(entry.get("ttl"))
            if ttl is None:
                raise self.fail(
                    entry.lines.get("ttl", line),
                    f"view {name}: ttl {entry.get('ttl')!r} is not a duration (e.g. 30d, 2h, 0)",
                )
            builtin = name in schema.GROUPS
            if builtin and ttl != schema.TTL_SECONDS[name]:
                raise self.fail(line, f"view {name}: a built-in view keeps its ttl")
            src = str(entry.get("source", SYNTHETIC if builtin else ""))
            if not src:
                raise self.fail(line, f"view {name}: a custom view names its source")
            out[name] = ViewDecl(
                name,
                ttl,
                src,
                builtin,
                stream=name == "customer_session",
                push=name != "customer_profile",
            )
        missing = sorted(set(schema.GROUPS) - set(out))
        if missing:
            raise self.fail(raw.line, f"views: built-in view {missing[0]} is missing")
        return out

    def features(self, doc: LineDict, views: Mapping[str, ViewDecl]) -> list[FeatureDecl]:
        raw = doc.get("features")
        if not isinstance(raw, list):
            raise self.fail(doc.lines.get("features", 1), "features must be a list")
        out: dict[str, FeatureDecl] = {}
        for entry, line in zip(raw, raw.lines, strict=True):
            entry = self.mapping(entry, line, "feature", _FEATURE_KEYS)
            name = entry.get("name")
            if not isinstance(name, str) or not _NAME.match(name):
                raise self.fail(line, f"feature name {name!r}: use lower_snake_case")
            what = f"feature {name}"
            typ = self.typed(entry, what)
            builtin = bool(entry.get("builtin", False))
            self._check_builtin(name, typ, entry.get("view"), builtin, line)
            if name in out:
                raise self.fail(line, f"{what}: declared twice")
            view = entry.get("view")
            if view not in views:
                raise self.fail(entry.lines.get("view", line), f"{what}: unknown view {view!r}")
            if not builtin and views[view].builtin:
                raise self.fail(
                    line,
                    f"{what}: view {view} is built-in; give custom features a view of their own",
                )
            if "default" not in entry:
                raise self.fail(line, f"{what}: needs a default (served for unknown customers)")
            default = self.value_of(typ, entry["default"], entry.lines["default"], what)
            out[name] = FeatureDecl(name, typ, default, view, builtin)
        missing = sorted(RULE_FEATURES - set(out))
        if missing:
            raise self.fail(raw.line, f"features: built-in {missing[0]} is missing (rules read it)")
        for view in views.values():
            if not any(f.view == view.name for f in out.values()):
                raise self.fail(doc.lines.get("views", 1), f"view {view.name} has no features")
        return list(out.values())

    def _check_builtin(self, name: str, typ: type, view: str, builtin: bool, line: int) -> None:
        known = schema.ALL_FEATURES.get(name)
        if known is not None and not builtin:
            raise self.fail(line, f"feature {name}: clashes with the built-in feature {name}")
        if builtin and known is None:
            raise self.fail(line, f"feature {name}: not a built-in feature")
        if builtin and known is not typ:
            raise self.fail(
                line, f"feature {name}: built-in type is {TYPE_NAMES[known]}, not {TYPE_NAMES[typ]}"
            )
        if builtin and schema.VIEW_OF[name] != view:
            raise self.fail(line, f"feature {name}: built-in view is {schema.VIEW_OF[name]}")


def load_declaration(path: Path | str, home: Path | str | None = None) -> Declaration:
    """Read and check a ``features.yaml``; source paths are relative to ``home`` (the
    workspace; default: the file's directory). Raises :class:`DeclarationError`."""
    path = Path(path)
    doc = load_with_lines(path)
    check = _Checker(path)
    if not isinstance(doc, LineDict):
        raise check.fail(1, "the file must be a mapping with views, features and sources")
    checked_mapping(check.fail, doc, 1, {"version", "views", "features", "sources"}, "top level")
    views = check.views(doc)
    features = check.features(doc, views)
    base = Path(home) if home is not None else path.parent
    sources = parse_sources(doc, check.fail, base, {f.name: f for f in features}, views)
    used = {s.name for s in sources} | {SYNTHETIC}
    for view in views.values():
        if view.source not in used:
            raise check.fail(
                doc["views"].lines[view.name], f"view {view.name}: unknown source {view.source!r}"
            )
    return Declaration(path, tuple(features), tuple(views.values()), tuple(sources))


def workspace_declaration_path(home: Path | str) -> Path:
    return Path(home) / "features.yaml"


def workspace_declaration(home: Path | str) -> Declaration:
    """The workspace's declaration, or the packaged default when it has none yet."""
    path = workspace_declaration_path(home)
    return load_declaration(path if path.exists() else DEFAULT_FILE, home)
