"""The :class:`FeatureSource` protocol: one read returns all features of one customer.

Implementations: :class:`InMemoryFeatureSource` (unit tests, the simulator) and the
Feast-backed sources in :mod:`features.feast.source`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from features.schema import DEFAULTS

FeatureValue = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class CustomerFeatures:
    """All features of one customer, as one typed record.

    ``known`` is False when the store had no row for the customer (the values are then
    :data:`features.schema.DEFAULTS`); ``stale`` names the features served past their TTL.
    """

    customer_id: str
    values: Mapping[str, FeatureValue]
    known: bool = True
    stale: frozenset[str] = field(default_factory=frozenset)


@runtime_checkable
class FeatureSource(Protocol):
    def get(self, customer_id: str) -> CustomerFeatures:
        """All features of one customer; raises ``FeatureStoreUnavailable`` if unreachable."""
        ...

    def ping(self) -> bool:
        """True when the store can be read (for ``/readyz``)."""
        ...


class InMemoryFeatureSource:
    """A dict-backed source: for unit tests and the in-process simulator."""

    def __init__(self, rows: Mapping[str, Mapping[str, FeatureValue]] | None = None) -> None:
        self._rows: dict[str, dict[str, FeatureValue]] = {
            k: dict(v) for k, v in (rows or {}).items()
        }
        self.available = True

    def get(self, customer_id: str) -> CustomerFeatures:
        from features.errors import FeatureStoreUnavailable

        if not self.available:
            raise FeatureStoreUnavailable("in-memory store switched off")
        row = self._rows.get(customer_id)
        if row is None:
            return CustomerFeatures(customer_id, DEFAULTS, known=False)
        return CustomerFeatures(customer_id, {**DEFAULTS, **row})

    def update(self, customer_id: str, values: Mapping[str, FeatureValue]) -> None:
        self._rows.setdefault(customer_id, {}).update(values)

    def erase(self, customer_id: str) -> int:
        return 1 if self._rows.pop(customer_id, None) is not None else 0

    def ids(self) -> Iterable[str]:
        return self._rows.keys()

    def ping(self) -> bool:
        return self.available
