"""ADWIN: a change detector on a stream's mean with a window that adapts to the data.

The window ``W`` keeps every recent value (compressed in an exponential histogram: row
``i`` holds at most ``max_buckets`` buckets of ``2**i`` values, each its sum and its sum
of squared deviations). Every ``clock`` values, each split of ``W`` at a bucket boundary
into an older part ``W0`` (``n0`` values, mean ``μ0``) and a newer ``W1`` (``n1``, ``μ1``)
is tested; while some split has

    |μ0 − μ1| > ε_cut,   ε_cut = sqrt(2/m · σ²_W · ln(2/δ')) + 2/(3m) · ln(2/δ'),
    m = 1 / (1/n0 + 1/n1),   δ' = δ / ln(n)

the oldest bucket is dropped: the window shrinks to the data since the change. A shrink
is a detection. This is the variance-aware bound of the paper's section 4 (its ADWIN2
with the Bernstein-style ε for values that are not in [0, 1]); written here because no
maintained implementation (``river``'s) is installed in the project's environment.

References:
    Bifet & Gavaldà, *Learning from Time-Changing Data with Adaptive Windowing*, SIAM
    International Conference on Data Mining (2007).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from training.errors import EstimatorInputError


@dataclass
class Adwin:
    """ADWIN over one stream of floats (see the module docstring).

    Parameters
    ----------
    delta: float, default 0.002
        Confidence: a false detection on a stationary stream has probability about
        ``delta`` per check.
    max_buckets: int, default 5
        Buckets per row of the exponential histogram (memory ``O(max_buckets · log n)``).
    clock: int, default 32
        Splits are tested every ``clock`` values (the detection delay grows by at most this).
    min_side: int, default 10
        Neither part of a tested split may hold fewer values.
    """

    delta: float = 0.002
    max_buckets: int = 5
    clock: int = 32
    min_side: int = 10
    width: int = field(default=0, init=False)
    total: float = field(default=0.0, init=False)
    #: sum of squared deviations from the window's mean
    m2: float = field(default=0.0, init=False)
    detections: int = field(default=0, init=False)
    #: rows of ``[sum, m2]`` buckets of ``2**row`` values, oldest first in each row
    _rows: list[list[list[float]]] = field(default_factory=list, init=False, repr=False)
    _seen: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.delta < 1.0:
            raise EstimatorInputError("delta must lie in (0, 1)", field="delta")
        if self.max_buckets < 2 or self.clock < 1 or self.min_side < 1:
            raise EstimatorInputError("max_buckets >= 2, clock >= 1 and min_side >= 1")

    @property
    def mean(self) -> float:
        return self.total / self.width if self.width else 0.0

    def update(self, value: float) -> bool:
        """Add one value; True when the window shrank (a change was detected)."""
        x = float(value)
        if not math.isfinite(x):
            raise EstimatorInputError(f"ADWIN takes finite values, got {value!r}", field="value")
        if self.width:
            d = x - self.total / self.width
            self.m2 += self.width * d * d / (self.width + 1)
        self.width += 1
        self.total += x
        if not self._rows:
            self._rows.append([])
        self._rows[0].append([x, 0.0])
        self._compress()
        self._seen += 1
        if self._seen % self.clock or self.width < 2 * self.min_side:
            return False
        changed = False
        while self._cut():
            self._drop_oldest()
            changed = True
        if changed:
            self.detections += 1
        return changed

    def _compress(self) -> None:
        size = 1
        for i, row in enumerate(self._rows):
            if len(row) <= self.max_buckets:
                return
            (s1, v1), (s2, v2) = row.pop(0), row.pop(0)  # the two oldest of the row
            d = s1 / size - s2 / size
            merged = [s1 + s2, v1 + v2 + size * d * d / 2.0]
            if i + 1 == len(self._rows):
                self._rows.append([])
            self._rows[i + 1].append(merged)  # newer than every bucket of the next row
            size *= 2

    def _buckets_oldest_first(self) -> list[tuple[int, float]]:
        out = []
        for i in range(len(self._rows) - 1, -1, -1):
            out.extend((1 << i, b[0]) for b in self._rows[i])
        return out

    def _cut(self) -> bool:
        """Whether some split of the window differs by more than its ε_cut."""
        n = self.width
        if n < 2 * self.min_side:
            return False
        variance = self.m2 / n
        log_term = math.log(2.0 * math.log(n) / self.delta)
        n0, s0 = 0, 0.0
        for size, s in self._buckets_oldest_first()[:-1]:
            n0 += size
            s0 += s
            n1 = n - n0
            if n1 < self.min_side:
                break
            if n0 < self.min_side:
                continue
            m = 1.0 / (1.0 / n0 + 1.0 / n1)
            eps = math.sqrt(2.0 / m * variance * log_term) + 2.0 / (3.0 * m) * log_term
            if abs(s0 / n0 - (self.total - s0) / n1) > eps:
                return True
        return False

    def _drop_oldest(self) -> None:
        row = len(self._rows) - 1
        while row > 0 and not self._rows[row]:
            row -= 1
        s, v = self._rows[row].pop(0)
        size = 1 << row
        rest = self.width - size
        if rest <= 0:
            self.width, self.total, self.m2 = 0, 0.0, 0.0
            return
        d = s / size - (self.total - s) / rest
        self.m2 = max(0.0, self.m2 - v - size * rest / self.width * d * d)
        self.width, self.total = rest, self.total - s
