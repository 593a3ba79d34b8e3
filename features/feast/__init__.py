"""Maestro's Feast adapter: the only package that touches Feast's internals.

:mod:`~features.feast.internals` holds every call of Feast's private API (the provider,
the SQLite online store's connection, row deletion); :mod:`~features.feast.source`
(over :mod:`~features.feast.sqlite_backend` and :mod:`~features.feast.redis_backend`, in
the row format of :mod:`~features.feast.row_format`), :mod:`~features.feast.row_io` and
:mod:`~features.feast.sqlite_writer` and :mod:`~features.feast.view_writer` (declared
views, for ``maestro materialize``) read and write online rows in Feast's own format
(SQLite tables: ``entity_key`` serialised v3, ``ValueProto`` bytes, ``event_ts``; Redis:
one hash per entity with ``murmur3`` field names and ``_ts:<view>`` timestamps). Code
elsewhere uses Feast's public SDK only.

Version bound: written against and verified with Feast 0.67.0; ``pyproject.toml`` pins
``feast>=0.40,<0.68``. A newer Feast may change the private API or the row format
without notice: ``tests/features/test_feast_adapter.py`` writes through Maestro's writers
and reads back through ``FeatureStore.get_online_features`` (SQLite and Redis), and fails
loudly when the two disagree (``tests/features/test_bulk_materialize.py`` does the same for
the view writers against Feast's own ``write_to_online_store``). Raise the bound only once
both pass.
"""
