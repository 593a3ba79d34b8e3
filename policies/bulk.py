"""The optional bulk-learning hook a policy may provide.

Training learns a candidate from tens of thousands of logged rows and scores the held-out
rows with every compared policy. A policy that can do either faster over a whole batch
than row by row implements :class:`BulkLearner`; training asks the policy
(``isinstance(policy, BulkLearner)``), never its kind, and falls back to
:meth:`~policies.base.Policy.learn` / :meth:`~policies.base.Policy.pmf` otherwise. The
promise: the same model and the same pmfs as the row-by-row methods.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from policies.types import LoggedBatch


class SharedColumns(Protocol):
    """The shared features of ``n`` contexts in columnar form, built once by the caller
    (``training.columns.SharedFeatures``): token streams of the customer (``c``) and
    request (``r``) namespaces, and each context's decision point."""

    customer: Any
    request: Any
    decision_points: list[str]

    def __len__(self) -> int: ...


@runtime_checkable
class BulkLearner(Protocol):
    """A policy that learns from, and scores, a whole logged batch at once."""

    def learn_logged(
        self,
        batch: LoggedBatch,
        features: SharedColumns,
        progress: Callable[[int], None] | None = None,
        chunk: int = 2000,
    ) -> None:
        """Learn from every row of ``batch`` in order, as ``learn(batch)`` would;
        ``features`` are those of ``batch.contexts``; ``progress(k)`` after every
        ``chunk`` rows (the last call with the remainder)."""
        ...

    def pmf_logged(self, batch: LoggedBatch, features: SharedColumns) -> list[np.ndarray]:
        """``pmf(context, actions)`` of every row of ``batch``, exploration floor applied:
        one array of shape ``(n_actions,)`` per row, in row order."""
        ...
