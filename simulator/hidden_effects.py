"""Custom features in the simulated world, and their hidden effect on how customers respond.

A workspace that declares a custom numeric feature in ``features.yaml`` can give the
simulator, in ``simulation.yaml`` (data, not Python), how that feature is distributed
over the customers and how it changes their response to actions::

    custom_features:
      digital_score:             # a custom int or float feature of features.yaml
        low: 0                   # each customer's value: uniform in [low, high],
        high: 20                 #   seeded by the customer base's seed and the feature
        effects:                 # hidden: policies see the value, never these weights
          - {channels: [email], weight: 0.9}
          - {channels: [push, sms], weight: -0.9}

With ``z = 2 (x - low) / (high - low) - 1`` (−1 at ``low``, +1 at ``high``), each effect
whose ``channels`` (or ``actions``, by id) match an action multiplies the customer's
response to it by ``max(0, 1 + weight · z)``: above, high scorers answer email twice as
often as an average customer and push not at all. ``no_contact`` is never affected.

The value is part of the customer's observable features (what Feast would serve), unless
the environment hides it (:attr:`simulator.environment.EnvConfig.hidden`): a world where
the feature exists but was never declared, to price what declaring it is worth.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from features.declared import Declaration
from features.errors import DeclarationError
from features.yaml_lines import LineDict, LineList, load_with_lines
from policies.types import Action
from simulator.errors import InvalidSimulationConfig

FILE_NAME = "simulation.yaml"


@dataclass(frozen=True)
class Effect:
    """One hidden effect: actions on ``channels`` (or with ids in ``actions``) get their
    response multiplied by ``max(0, 1 + weight · z)``."""

    weight: float
    channels: frozenset[str] = frozenset()
    actions: frozenset[str] = frozenset()

    def matches(self, action: Action) -> bool:
        return action.channel in self.channels or action.id in self.actions


@dataclass(frozen=True)
class CustomFeature:
    """A custom feature of the simulated world: its values (uniform in ``[low, high]``,
    rounded when ``integer``) and its hidden effects."""

    name: str
    low: float
    high: float
    integer: bool = False
    effects: tuple[Effect, ...] = ()

    def __post_init__(self) -> None:
        if not self.high > self.low:
            raise InvalidSimulationConfig(f"custom feature {self.name}: high must exceed low")

    def values(self, n: int, seed: int) -> list[float | int]:
        """The values of ``n`` customers (row order), seeded by ``seed`` and the name."""
        rng = random.Random(seed * 1_000_003 + zlib.crc32(self.name.encode()))
        draws = [rng.uniform(self.low, self.high) for _ in range(n)]
        return [round(v) for v in draws] if self.integer else draws

    def z(self, value: float) -> float:
        """``value`` on the effect scale: −1 at ``low``, +1 at ``high``."""
        return 2.0 * (value - self.low) / (self.high - self.low) - 1.0


def multiplier(
    features: Sequence[CustomFeature], custom: Mapping[str, float], action: Action
) -> float:
    """The product of every matching effect's factor for a customer whose custom values
    are ``custom`` (1.0 when none matches or the action makes no contact)."""
    out = 1.0
    if action.channel == "none":
        return out
    for feat in features:
        value = custom.get(feat.name)
        if value is None:
            continue
        z = feat.z(float(value))
        for effect in feat.effects:
            if effect.matches(action):
                out *= max(0.0, 1.0 + effect.weight * z)
    return out


class _Reader:
    def __init__(self, path: Path) -> None:
        self.file = path.name

    def fail(self, line: int, problem: str) -> InvalidSimulationConfig:
        return InvalidSimulationConfig(f"{self.file}:{line}: {problem}")

    def number(self, entry: LineDict, key: str, what: str) -> float:
        value = entry.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(entry.lines.get(key, entry.line), f"{what}: {key} must be a number")
        return float(value)

    def names(self, entry: LineDict, key: str, what: str) -> frozenset[str]:
        value = entry.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(entry.lines.get(key, entry.line), f"{what}: {key} must be a list")
        return frozenset(value)

    def effect(self, entry: Any, line: int, what: str) -> Effect:
        if not isinstance(entry, LineDict) or set(entry) - {"channels", "actions", "weight"}:
            raise self.fail(line, f"{what}: an effect is {{channels|actions: [...], weight}}")
        effect = Effect(
            self.number(entry, "weight", what),
            self.names(entry, "channels", what),
            self.names(entry, "actions", what),
        )
        if not effect.channels and not effect.actions:
            raise self.fail(line, f"{what}: an effect names channels or actions")
        return effect

    def feature(
        self, name: str, entry: Any, line: int, declared: Declaration | None
    ) -> CustomFeature:
        what = f"custom feature {name}"
        if not isinstance(entry, LineDict) or set(entry) - {"low", "high", "effects"}:
            raise self.fail(line, f"{what}: use low, high and effects")
        integer = False
        if declared is not None:
            decl = {f.name: f for f in declared.custom()}.get(name)
            if decl is None or decl.type not in (int, float):
                raise self.fail(line, f"{what}: not a custom int or float feature of features.yaml")
            integer = decl.type is int
        effects = entry.get("effects", LineList())
        if not isinstance(effects, LineList):
            raise self.fail(entry.lines.get("effects", line), f"{what}: effects must be a list")
        low, high = self.number(entry, "low", what), self.number(entry, "high", what)
        if not high > low:
            raise self.fail(entry.lines["high"], f"{what}: high must exceed low")
        return CustomFeature(
            name,
            low,
            high,
            integer,
            tuple(self.effect(e, n, what) for e, n in zip(effects, effects.lines, strict=True)),
        )


def load_custom_features(
    path: Path | str, declared: Declaration | None = None
) -> tuple[CustomFeature, ...]:
    """Read ``simulation.yaml``'s ``custom_features``; with ``declared`` (the workspace's
    ``features.yaml``) each must be a declared custom int or float feature. A problem is
    an :class:`InvalidSimulationConfig` whose message is ``simulation.yaml:<line>: ...``."""
    path = Path(path)
    try:
        doc = load_with_lines(path)
    except DeclarationError as exc:
        raise InvalidSimulationConfig(str(exc)) from exc
    read = _Reader(path)
    if not isinstance(doc, LineDict) or set(doc) - {"custom_features"}:
        raise read.fail(1, "the file is a mapping with custom_features")
    raw = doc.get("custom_features") or LineDict()
    if not isinstance(raw, LineDict):
        raise read.fail(doc.lines["custom_features"], "custom_features must be a mapping")
    return tuple(read.feature(n, e, raw.lines[n], declared) for n, e in raw.items())
