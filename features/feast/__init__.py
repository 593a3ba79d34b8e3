"""The Feast adapter: the only code that touches Feast's private API or its online row
format (``internals``, ``sqlite_writer``, ``row_io``), and the Feast-backed FeatureSource."""
