"""The one shape of a store that can forget a customer.

Every store holding customer data (the online feature store with its pending event rows,
the offline Parquet, the decision and reward logs, the experiment assignments) offers a
:class:`CustomerEraser`; one orchestration (:func:`serving.erasure.erase_with`) runs them
for ``maestro erase`` and ``DELETE /customers/{id}`` alike. The protocol is structural:
a store satisfies it without importing this module, so ``features`` and ``serving``
implement it while staying independent of each other.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class CustomerEraser(Protocol):
    """One store's erasure of one customer."""

    @property
    def name(self) -> str:
        """The store, as the erasure registry names it (``"feature_store"``, ...)."""
        ...

    def erase(self, customer_id: str) -> dict[str, int]:
        """Remove every row of ``customer_id``; return counts keyed by what was removed
        (the keys of the erasure record, e.g. ``{"decisions": 2, "rewards": 1}``)."""
        ...
