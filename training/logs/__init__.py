"""The decision log's one owner: typed records, the Parquet schema derived from them, the
column names, and reading and writing the datasets. The serving writer, the training
reader, erasure, lift and the synthetic generator all go through it."""
