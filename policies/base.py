"""The :class:`Policy` protocol and the machinery every policy shares.

A policy maps (context, eligible actions) to a probability mass function over
those actions; :meth:`BasePolicy.decide` mixes in the exploration floor and
draws one action with a uniform number derived from the decision's seed, so the
logged probability is exactly the one the action was drawn with and replaying a
decision with the same seed draws the same action. Modelled on coba's
``Learner`` protocol (Rucker et al., *coba*, 2021).
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np

from core.compiled import compiled_or
from policies.errors import InvalidParameterError, ModelLoadError
from policies.types import (
    Action,
    Context,
    Decision,
    Exclusion,
    LoggedBatch,
    RankedAction,
    validate_actions,
)

_MASK64 = (1 << 64) - 1
_MAGIC = b"MAESTRO1"


def seed_from_event_id(event_id: str) -> int:
    """A 64-bit seed derived from an event id (stable across processes and machines)."""
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "little")


def uniform_from_seed(seed: int) -> float:
    """A uniform number in [0, 1) from ``seed`` by one SplitMix64 step (Steele et al., 2014)."""
    z = (seed + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    z ^= z >> 31
    return (z >> 11) * (1.0 / (1 << 53))


def apply_floor(pmf: np.ndarray | Sequence[float], floor: float) -> list[float]:
    """Mix ``pmf`` with the uniform distribution: ``(1 - floor) * pmf + floor / n_actions``.

    Every action then has probability at least ``floor / n_actions``. The result is
    renormalised so it sums to 1 within floating-point error; a pmf with no mass,
    negative or non-finite entries becomes uniform (never a silent bias).
    Pure Python on purpose: for the handful of actions of one decision it is several
    times faster than NumPy's per-call overhead.
    """
    probs = [float(p) for p in pmf]
    n = len(probs)
    if floor > 0.0:
        keep, add = 1.0 - floor, floor / n
        probs = [keep * p + add for p in probs]
    total = math.fsum(probs)
    if not math.isfinite(total) or total <= 0.0 or min(probs) < 0.0:
        return [1.0 / n] * n
    return [p / total for p in probs]


def draw(pmf: Sequence[float], seed: int) -> int:
    """Index drawn from ``pmf`` by inverse-CDF sampling with the seed's uniform number.

    Zero-probability entries are never returned.
    """
    u = uniform_from_seed(seed) * math.fsum(pmf)
    acc = 0.0
    last = -1
    for i, p in enumerate(pmf):
        if p <= 0.0:
            continue
        acc += p
        last = i
        if u < acc:
            return i
    return last


def finish_py(
    probs: list[float],
    actions: Sequence[Action],
    seed: int,
    event_id: str,
    excluded: tuple[Exclusion, ...],
    kind: str,
    version: str,
) -> Decision:
    """The decision drawing from ``probs`` (the final pmf over ``actions``) with the
    seed's uniform number, every action ranked by probability (ties in their order).
    The pure-Python twin of ``policies._decide.finish`` (compiled, same results)."""
    index = draw(probs, seed)
    order = sorted(range(len(probs)), key=probs.__getitem__, reverse=True)
    ranking = tuple(RankedAction(actions[i].id, probs[i]) for i in order)
    return Decision(
        event_id=event_id,
        action=actions[index],
        probability=probs[index],
        ranking=ranking,
        excluded=excluded,
        policy=kind,
        policy_version=version,
        explored=probs[index] < probs[order[0]],
    )


#: :func:`finish_py`, compiled (``policies._decide``) when it is built
finish = compiled_or("policies._decide", "finish", finish_py)


def greedy_pmf(scores: np.ndarray) -> np.ndarray:
    """Uniform over the arg-max set of ``scores`` (ties share the mass)."""
    best = scores.max()
    mask = scores >= best - 1e-12
    return mask / mask.sum()


@runtime_checkable
class Policy(Protocol):
    """What every policy does. A policy that cannot say its propensity is not a policy."""

    kind: ClassVar[str]
    version: str

    def decide(
        self, context: Context, actions: Sequence[Action], seed: int, event_id: str = ""
    ) -> Decision: ...

    def pmf(self, context: Context, actions: Sequence[Action]) -> np.ndarray: ...

    def learn(self, batch: LoggedBatch) -> None: ...

    @property
    def params(self) -> dict[str, Any]: ...

    def save(self) -> bytes: ...

    @classmethod
    def load(cls, data: bytes) -> Self: ...


@dataclass
class BasePolicy:
    """Shared behaviour: parameter checks, floor mixing, seeded draw, save envelope.

    Subclasses implement :meth:`raw_pmf` (the policy's own distribution), :meth:`learn`,
    and the payload hooks :meth:`_state` / :meth:`_restore`.
    """

    exploration_floor: float = 0.0
    seed: int = 0

    kind: ClassVar[str] = "base"
    version: str = "0"

    def __post_init__(self) -> None:
        if not 0.0 <= self.exploration_floor <= 1.0:
            raise InvalidParameterError(
                f"exploration_floor must lie in [0, 1], got {self.exploration_floor}"
            )
        self.version = str(self.version)

    # ---------------------------------------------------------------- deciding
    def raw_pmf(self, context: Context, actions: Sequence[Action]) -> Sequence[float]:
        """The policy's own pmf over ``actions``, before the exploration floor."""
        raise NotImplementedError

    def pmf(self, context: Context, actions: Sequence[Action]) -> np.ndarray:
        """Probabilities over ``actions`` (all eligible), floor applied, shape ``(n_actions,)``."""
        return np.asarray(apply_floor(self.raw_pmf(context, actions), self.exploration_floor))

    def decide(
        self, context: Context, actions: Sequence[Action], seed: int, event_id: str = ""
    ) -> Decision:
        """Draw one of ``actions`` (all eligible) with a known probability.

        Same context, actions, model and seed give the same draw.
        """
        return self._decide(context, actions, seed, event_id, ())

    def _decide(
        self,
        context: Context,
        actions: Sequence[Action],
        seed: int,
        event_id: str,
        excluded: tuple[Exclusion, ...],
    ) -> Decision:
        """:meth:`decide` with the rules' ``excluded`` actions recorded in the decision."""
        validate_actions(actions)
        probs = apply_floor(self.raw_pmf(context, actions), self.exploration_floor)
        return finish(probs, actions, seed, event_id, excluded, self.kind, self.version)

    # ---------------------------------------------------------------- learning
    def learn(self, batch: LoggedBatch) -> None:
        """Update from logged feedback. Stateless policies ignore it."""

    # ---------------------------------------------------------------- params & bytes
    @property
    def params(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init}

    def _state(self) -> bytes:
        return b""

    def _restore(self, payload: bytes) -> None:
        return None

    def save(self) -> bytes:
        """Bytes holding kind, hyperparameters and learned state, with a SHA-256 of the state
        so a corrupted artefact is refused at load instead of silently serving garbage."""
        payload = self._state()
        header = json.dumps(
            {
                "kind": self.kind,
                "params": _jsonable(self.params),
                "sha256": hashlib.sha256(payload).hexdigest(),
            }
        ).encode()
        return _MAGIC + struct.pack("<I", len(header)) + header + payload

    @classmethod
    def load(cls, data: bytes) -> Self:
        kind, params, payload = unpack(data)
        if kind != cls.kind:
            raise ModelLoadError(f"saved policy is {kind!r}, not {cls.kind!r}")
        try:
            policy = cls(**params)
            policy._restore(payload)
        except ModelLoadError:
            raise
        except Exception as exc:  # corrupt payloads fail in library-specific ways
            raise ModelLoadError(f"cannot load {cls.kind} policy: {exc}") from exc
        return policy


def unpack(data: bytes) -> tuple[str, dict[str, Any], bytes]:
    """Split saved bytes into (kind, params, payload); raise :class:`ModelLoadError` if corrupt."""
    if not isinstance(data, (bytes, bytearray)) or not data.startswith(_MAGIC):
        raise ModelLoadError("not a saved Maestro policy (bad magic bytes)")
    try:
        (length,) = struct.unpack_from("<I", data, len(_MAGIC))
        start = len(_MAGIC) + 4
        header = json.loads(bytes(data[start : start + length]))
        payload = bytes(data[start + length :])
        kind, params, digest = header["kind"], dict(header["params"]), header["sha256"]
    except (struct.error, ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"corrupt saved policy header: {exc}") from exc
    if hashlib.sha256(payload).hexdigest() != digest:
        raise ModelLoadError("corrupt saved policy: checksum mismatch")
    return kind, params, payload


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return _jsonable(asdict(value))
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value
