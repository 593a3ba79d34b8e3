"""The durable decision and reward log: the O_APPEND spool, the roll to Parquet, recovery
and erasure tombstones."""
