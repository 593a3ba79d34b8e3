"""Decoding one logged decision row for the training join (:mod:`training.data`).

The join reads the columns named in :data:`ROW_COLUMNS` and :data:`TRAINING_COLUMNS`
(names from :mod:`training.logs.schema`), never the others.

Each row's JSON columns are decoded with orjson; what repeats across rows (action
lists, request contexts, logged pmfs) is decoded once per distinct string. A row
that cannot be used is named by its reason (``no_action``, ``bad_probability``,
``corrupt_json``, ``ranking_mismatch``) and counted by the join, never fatal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import (
    Callable,
    ItemsView,
    Iterator,
    KeysView,
    Mapping,
    Sequence,
    ValuesView,
)
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from policies.types import Action, Context, FeatureValue
from training.logs.schema import (
    ACTION_ID,
    ACTIONS,
    CONTEXT,
    CUSTOMER_FEATURES,
    CUSTOMER_ID,
    DECISION_POINT,
    EVENT_ID,
    POLICY,
    POLICY_VERSION,
    PROBABILITIES,
    PROBABILITY,
    REWARD_DEADLINE,
    TIMESTAMP,
    VARIANT,
)

#: how far a logged pmf may be from summing to 1, and the logged probability from it
PMF_TOLERANCE = 1e-6

_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})

#: the decision time as float epoch seconds, a column the join derives from ``timestamp``
T_EPOCH = "t_epoch"

#: the columns a row is decoded from, in :meth:`RowParser.parse` order (after the event
#: id); all logged but :data:`T_EPOCH`
ROW_COLUMNS = (
    EVENT_ID,
    CUSTOMER_ID,
    DECISION_POINT,
    T_EPOCH,
    CUSTOMER_FEATURES,
    CONTEXT,
    ACTIONS,
    PROBABILITIES,
    ACTION_ID,
    PROBABILITY,
)

#: the decision log's columns the training join reads (others are never decoded)
TRAINING_COLUMNS = frozenset(
    {*ROW_COLUMNS, TIMESTAMP, REWARD_DEADLINE, VARIANT, POLICY, POLICY_VERSION} - {T_EPOCH}
)


@dataclass
class JoinCounts:
    """What the row loop of the join counted: skipped rows by reason, and the kept rows
    that were rewarded or got the default reward, and the rows still pending."""

    skipped: Counter[str] = field(default_factory=Counter)
    rewarded: int = 0
    defaulted: int = 0
    pending: int = 0


def _scalars_only(mapping: object) -> bool:
    """A JSON object of scalars. orjson gives ``str`` keys and values of exactly the JSON
    types (``str``, ``int``, ``float``, ``bool``, ``None``, ``list``, ``dict``), so the set
    of the values' types decides, in C."""
    return mapping.__class__ is dict and set(map(type, mapping.values())) <= _SCALAR_TYPES  # type: ignore[attr-defined]


def _flat_object(decoded: object, text: object) -> bool:
    """:func:`_scalars_only` of ``decoded``, the JSON ``text`` decoded: a text with one
    ``{`` and no ``[`` cannot hold a nested object or list (two memchr scans instead of
    a pass over the values); any other text gets the full check."""
    if decoded.__class__ is not dict:
        return False
    if text.__class__ is str and "[" not in text and text.count("{") == 1:  # type: ignore[operator, union-attr]
        return True
    return _scalars_only(decoded)


class LoggedFeatures(Mapping[str, FeatureValue]):
    """A logged feature mapping, decoded from its JSON ``text`` on first use.

    The join checks the text (a JSON object of scalars) and keeps it; training reads
    most rows only through :func:`training.columns.token_stream`, which reads the text
    itself, so most rows are never decoded into Python objects. Read-only, like the
    mappings of a :class:`~policies.types.Context`; equal to the decoded ``dict``.
    """

    __slots__ = ("_data", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._data: dict[str, FeatureValue] | None = None

    def _decoded(self) -> dict[str, FeatureValue]:
        data = self._data
        if data is None:
            import orjson

            data = self._data = orjson.loads(self.text)
        return data

    def __getitem__(self, key: str) -> FeatureValue:
        return self._decoded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._decoded())

    def __len__(self) -> int:
        return len(self._decoded())

    def __contains__(self, key: object) -> bool:
        return key in self._decoded()

    def keys(self) -> KeysView[str]:
        return self._decoded().keys()

    def items(self) -> ItemsView[str, FeatureValue]:
        return self._decoded().items()

    def values(self) -> ValuesView[FeatureValue]:
        return self._decoded().values()

    def get(self, key: str, default: Any = None) -> Any:
        return self._decoded().get(key, default)

    def __repr__(self) -> str:
        return f"LoggedFeatures({self._decoded()!r})"


class RowParser:
    """Decode one logged decision row, or name why it is unusable.

    orjson rejects NaN/Infinity tokens, so decoded numbers are finite; scalars-only is
    checked here, which is why :meth:`Context.trusted` may skip re-validation. Action
    lists repeat across rows and are decoded once per distinct JSON string.
    """

    def __init__(self) -> None:
        import orjson

        self._loads = orjson.loads
        self._actions: dict[str, tuple[list[Action], list[str]] | str] = {}
        self._requests: dict[str, dict[str, object] | None] = {}
        self._pmfs: dict[str, tuple[np.ndarray, list[float], float] | None] = {}

    def _decode_actions(self, text: str) -> tuple[list[Action], list[str]] | str:
        hit = self._actions.get(text)
        if hit is not None:
            return hit
        try:
            raw = self._loads(text)
            actions = [Action(a["id"], a["channel"], a.get("features") or {}) for a in raw]
            out: tuple[list[Action], list[str]] | str = (actions, [a.id for a in actions])
        except (TypeError, ValueError, KeyError, AttributeError):
            out = "corrupt_json"
        if len(self._actions) < 100_000:
            self._actions[text] = out
        return out

    def _decode_request(self, text: object) -> dict[str, object] | None:
        """The request context (few distinct values in a log): decoded and checked once per
        distinct string; ``None`` when corrupt. Rows share the decoded mapping, which no
        one mutates (a :class:`Context` is read-only)."""
        if not isinstance(text, (str, bytes)):
            return None
        hit = self._requests.get(text)  # type: ignore[call-overload]
        if hit is not None or text in self._requests:
            return hit
        try:
            out = self._loads(text)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            out = None
        if not _scalars_only(out):
            out = None
        if len(self._requests) < 100_000:
            self._requests[text] = out  # type: ignore[index]
        return out

    def _decode_pmf(self, text: object) -> tuple[np.ndarray, list[float], float] | None:
        """The logged pmf as an array, as floats and its sum (numpy's sum; for fewer than
        8 numbers that is the plain left-to-right sum), memoised per distinct string;
        ``None`` when it is not a JSON list of numbers."""
        if not isinstance(text, (str, bytes)):
            return None
        hit = self._pmfs.get(text)  # type: ignore[call-overload]
        if hit is not None or text in self._pmfs:
            return hit
        out: tuple[np.ndarray, list[float], float] | None
        try:
            pmf = np.array(self._loads(text), dtype=float)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            out = None
        else:
            if pmf.ndim != 1:  # numbers, but not a flat list: matches no action list
                out = (pmf, [], float("inf"))
            else:
                values = pmf.tolist()
                out = (pmf, values, sum(values) if len(values) < 8 else float(pmf.sum()))
        if len(self._pmfs) < 100_000:
            self._pmfs[text] = out  # type: ignore[index]
        return out

    def parse(
        self,
        customer_id: object,
        decision_point: object,
        t_epoch: object,
        customer_features: object,
        context: object,
        actions_json: object,
        probabilities: object,
        action_id: object,
        p: object,
    ) -> tuple[Context, list[Action], int, float, np.ndarray] | str:
        if not isinstance(action_id, str):
            return "no_action"
        try:
            p = float(p)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return "bad_probability"
        if not (0.0 < p <= 1.0):  # False for NaN
            return "bad_probability"
        try:
            customer = self._loads(customer_features)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return "corrupt_json"
        request = self._decode_request(context)
        logged = self._decode_pmf(probabilities)
        if request is None or logged is None or not _flat_object(customer, customer_features):
            return "corrupt_json"
        decoded = self._decode_actions(actions_json)  # type: ignore[arg-type]
        if decoded.__class__ is str:
            return decoded  # type: ignore[return-value]
        actions, ids = decoded  # type: ignore[misc]
        pmf, values, total = logged
        if len(values) != len(ids) or action_id not in ids:
            return "ranking_mismatch"
        index = ids.index(action_id)
        if abs(total - 1.0) > PMF_TOLERANCE or abs(values[index] - p) > PMF_TOLERANCE:
            return "ranking_mismatch"
        ctx = Context.trusted(
            str(customer_id),
            customer,
            request,  # type: ignore[arg-type]
            str(decision_point),
            float(t_epoch),  # type: ignore[arg-type]
        )
        return ctx, actions, index, p, pmf


def join_rows_py(
    parser: RowParser,
    columns: Sequence[list[Any]],
    reward_of: dict[Any, float],
    deadlines: list[float] | None,
    now: float,
    default_reward: Callable[[str], float],
    counts: JoinCounts,
) -> tuple[list[Any], ...]:
    """Decode and join every logged decision row (pure-Python twin of
    :func:`training._join.join_rows`).

    ``columns`` are the decision log's :data:`ROW_COLUMNS` as lists; ``reward_of`` the
    joined reward per event id; a row with no reward whose ``deadlines`` entry is after
    ``now`` is pending. Returns ``(contexts, action lists, chosen indices, logged
    probabilities, rewards, logged pmfs, kept row numbers)``; unusable rows are counted
    in ``counts.skipped`` by reason, never fatal.
    """
    contexts: list[Context] = []
    action_lists: list[list[Action]] = []
    chosen: list[int] = []
    probs: list[float] = []
    rewards_out: list[float] = []
    pmfs: list[np.ndarray] = []
    keep: list[int] = []
    parse = parser.parse
    for row_no, (event_id, cid, dp, t, cf, rc, acts, pmf_json, aid, p_logged) in enumerate(
        zip(*columns, strict=True)
    ):
        parsed = parse(cid, dp, t, cf, rc, acts, pmf_json, aid, p_logged)
        if parsed.__class__ is str:
            counts.skipped[parsed] += 1  # type: ignore[index]
            continue
        ctx, actions, index, p, pmf = parsed  # type: ignore[misc]
        if event_id in reward_of:
            reward = reward_of[event_id]
            counts.rewarded += 1
        elif deadlines is not None and deadlines[row_no] > now:
            counts.pending += 1
            continue
        else:
            reward = default_reward(ctx.decision_point)
            counts.defaulted += 1
        contexts.append(ctx)
        action_lists.append(actions)
        chosen.append(index)
        probs.append(p)
        rewards_out.append(reward)
        pmfs.append(pmf)
        keep.append(row_no)
    return contexts, action_lists, chosen, probs, rewards_out, pmfs, keep
