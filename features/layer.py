"""One object with the four verbs serving needs from the Feast-backed feature store:
``get`` and ``ping`` (:class:`~features.source.FeatureSource`), ``ingest`` (``POST
/events``) and ``erase`` (``DELETE /customers/{id}``), plus ``close``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from features.agents import open_agent_source
from features.erasure import erase_customer
from features.event_writer import EventWriter
from features.events import Event
from features.feast.source import open_feature_source
from features.source import CustomerFeatures


class FeastFeatureLayer:
    """The Feast repo at ``path`` (a workspace or its ``feature_repo``), read and written.

    ``flush_interval``: how often batched event rows are written (≤ 0.1 s keeps the
    contract's 100 ms cross-process visibility); ``timeout``: the read bound;
    ``cache_size``/``cache_seconds``: the SQLite row cache (:mod:`features.cache`).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        timeout: float = 0.1,
        flush_interval: float = 0.01,
        max_pending: int = 50_000,
        cache_size: int = 200_000,
        cache_seconds: float = 60.0,
    ) -> None:
        self.source = open_feature_source(
            path, timeout=timeout, cache_size=cache_size, cache_seconds=cache_seconds
        )
        self.writer = EventWriter(
            self.source, flush_interval=flush_interval, max_pending=max_pending
        )
        #: the agent roster (None for a workspace without the ``agent`` view)
        self.agents = open_agent_source(path)

    def get(self, customer_id: str) -> CustomerFeatures:
        return self.source.get(customer_id)

    def ping(self) -> bool:
        return self.source.ping()

    def ingest(self, event: Mapping[str, Any] | Event | Any) -> Event:
        return self.writer.ingest(event)

    def erase(self, customer_id: str) -> dict[str, int]:
        """The customer's online rows, offline Parquet rows and this process's pending
        event rows (:func:`features.erasure.erase_customer`); counts by kind."""
        return erase_customer(self.source, customer_id, self.writer).counts()

    def close(self) -> None:
        if self.agents is not None:
            self.agents.close()
        self.writer.close()
        self.source.close()
