"""Population stability index of numeric features against a reference window's bins.

For one feature, the reference window's values fix ``bins`` quantile bins (edges at its
deciles by default; repeated edges merged, values outside fall in the end bins); a later
window's share ``q_i`` per bin is compared with the reference's ``p_i``:

    PSI = Σ_i (q_i − p_i) · ln(q_i / p_i)

with every share floored at ``floor`` so an empty bin does not make it infinite. The usual
reading: below 0.1 stable, 0.1–0.25 a moderate shift, above 0.25 a significant one.

References:
    Yurdakul & Naranjo, *Statistical Properties of the Population Stability Index*,
    Journal of Risk Model Validation 14(4) (2020). Siddiqi, *Credit Risk Scorecards*,
    Wiley (2006), for the thresholds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from training.errors import EstimatorInputError


@dataclass(frozen=True)
class Bins:
    """One feature's reference bins: inner ``edges`` (shape ``(n_bins - 1,)``) and the
    reference share of each bin (shape ``(n_bins,)``)."""

    edges: np.ndarray
    shares: np.ndarray

    @classmethod
    def fit(cls, values: Sequence[float] | np.ndarray, bins: int = 10) -> Bins:
        x = np.asarray(values, dtype=float)
        x = x[np.isfinite(x)]
        if len(x) == 0 or bins < 2:
            raise EstimatorInputError("PSI bins need finite reference values and bins >= 2")
        edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1]))
        return cls(edges, _shares(x, edges))

    def psi(self, values: Sequence[float] | np.ndarray, floor: float = 1e-4) -> float:
        """PSI of ``values`` against the reference (0.0 for identical shares)."""
        x = np.asarray(values, dtype=float)
        x = x[np.isfinite(x)]
        if len(x) == 0:
            return 0.0
        p = np.maximum(self.shares, floor)
        q = np.maximum(_shares(x, self.edges), floor)
        return float(np.sum((q - p) * np.log(q / p)))


def _shares(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1)
    return counts / counts.sum()


def fit_bins(columns: Mapping[str, Sequence[float]], bins: int = 10) -> dict[str, Bins]:
    """Reference bins of every column that has a finite value and more than one level."""
    out = {}
    for name, values in columns.items():
        x = np.asarray(values, dtype=float)
        x = x[np.isfinite(x)]
        if len(x) and np.ptp(x) > 0:
            out[name] = Bins.fit(x, bins)
    return out


def worst_psi(
    reference: Mapping[str, Bins], columns: Mapping[str, Sequence[float]]
) -> tuple[str | None, float]:
    """The feature whose PSI against ``reference`` is highest, and that PSI."""
    worst: tuple[str | None, float] = (None, 0.0)
    for name, bins in reference.items():
        if name in columns:
            value = bins.psi(columns[name])
            if value > worst[1]:
                worst = (name, value)
    return worst
