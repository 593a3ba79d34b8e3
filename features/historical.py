"""Point-in-time-correct training features through Feast's historical retrieval.

For each ``(customer_id, event_timestamp)`` row, Feast's ``get_historical_features``
joins the latest feature values at or before that time and within each view's TTL
(no leakage from the future), from the offline Parquet data.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from features.errors import FeatureStoreError

_ROW = "__maestro_row"

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore


def training_features(
    repo_or_store: Path | str | FeatureStore,
    entity_df: pd.DataFrame,
    service: str = "policy_inputs_v1",
) -> pd.DataFrame:
    """``entity_df`` (``customer_id``, ``event_timestamp`` [+ any columns, kept]) joined with
    the features of ``service`` as of each row's time. Missing values are NaN/None."""
    from feast import FeatureStore

    missing = {"customer_id", "event_timestamp"} - set(entity_df.columns)
    if missing:
        raise FeatureStoreError(
            f"entity_df lacks {', '.join(sorted(missing))}", field=sorted(missing)[0]
        )
    store = (
        repo_or_store
        if isinstance(repo_or_store, FeatureStore)
        else FeatureStore(repo_path=str(repo_or_store))
    )
    # Feast's file offline store drops entity rows whose customer has data only *after*
    # the row's time (instead of returning nulls); re-attach them by a row id, in order.
    rows = entity_df.reset_index(drop=True).assign(**{_ROW: range(len(entity_df))})
    job = store.get_historical_features(entity_df=rows, features=store.get_feature_service(service))
    found = job.to_df().drop(columns=[c for c in rows.columns if c != _ROW])
    out = rows.merge(found, on=_ROW, how="left", validate="one_to_one")
    return out.sort_values(_ROW).drop(columns=[_ROW]).reset_index(drop=True)
