"""The :class:`Policy` protocol and the machinery every policy shares.

A policy maps (context, eligible actions) to a probability mass function over those
actions (:meth:`~BasePolicy.raw_pmf`); it never draws. :mod:`policies.draw` mixes in
the exploration floor and draws one action with a uniform number derived from the
decision's seed, so the logged probability is exactly the one the action was drawn
with and replaying a decision with the same seed draws the same action. Modelled on
coba's ``Learner`` protocol (Rucker et al., *coba*, 2021).
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np

from policies import draw
from policies.errors import InvalidParameterError, ModelLoadError
from policies.types import Action, Context, Decision, LoggedBatch

_MAGIC = b"MAESTRO1"


def greedy_pmf(scores: np.ndarray) -> np.ndarray:
    """Uniform over the arg-max set of ``scores`` (ties share the mass)."""
    best = scores.max()
    mask = scores >= best - 1e-12
    return mask / mask.sum()


@runtime_checkable
class Policy(draw.PmfPolicy, Protocol):
    """What every policy does: its own pmf (:meth:`raw_pmf`, drawn from by
    :mod:`policies.draw`), the floored pmf, learning, parameters and bytes. A policy that
    cannot say its propensity is not a policy."""

    def pmf(self, context: Context, actions: Sequence[Action]) -> np.ndarray: ...

    def learn(self, batch: LoggedBatch) -> None: ...

    @property
    def params(self) -> dict[str, Any]: ...

    def save(self) -> bytes: ...

    @classmethod
    def load(cls, data: bytes) -> Self: ...


@dataclass
class BasePolicy:
    """Shared behaviour: parameter checks, the floored pmf, the save envelope, and
    :meth:`decide` through :mod:`policies.draw`.

    Subclasses implement :meth:`raw_pmf` (the policy's own distribution), :meth:`learn`,
    and the payload hooks :meth:`_state` / :meth:`_restore`.
    """

    exploration_floor: float = 0.0
    seed: int = 0

    kind: ClassVar[str] = "base"
    #: the pmf depends only on the decision point and the action list, not on the
    #: customer: bulk evaluation asks once per distinct (decision point, actions)
    context_free: ClassVar[bool] = False
    #: a candidate of the same kind may start from this policy's learnt state
    warm_starts: ClassVar[bool] = False
    version: str = "0"
    #: the customer features the policy was trained on (``()``: not recorded, all are
    #: read); a feature outside them is dropped before the policy sees a context
    input_features: tuple[str, ...] = ()
    #: ``input_features`` as a set, or None when not recorded (read by the draw)
    known_features: ClassVar[frozenset[str] | None] = None

    def record_inputs(self, names: Sequence[str]) -> None:
        """Record the customer features the policy learns from (kept in its saved bytes)."""
        self.input_features = tuple(sorted(names))
        self.known_features = frozenset(self.input_features) if self.input_features else None  # type: ignore[misc]

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
        return np.asarray(draw.floored_pmf(self, context, actions))

    def decide(
        self, context: Context, actions: Sequence[Action], seed: int, event_id: str = ""
    ) -> Decision:
        """Draw one of ``actions`` (all eligible) with a known probability, by
        :func:`policies.draw.decide`. Same context, actions, model and seed give the same
        draw."""
        return draw.decide(self, context, actions, seed, event_id)

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
            inputs = params.pop("input_features", ())
            policy = cls(**params)
            policy.record_inputs(inputs or ())
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
