"""Reading a Parquet file, the one way every Maestro command does it.

``pandas.read_parquet(path)`` opens a local file as a Python file object and hands it
to Arrow, which reads it on its thread pools; a pool thread can drop the last
reference to a buffer of that Python file after the command has finished, while the
interpreter shuts down. Releasing a Python-owned buffer then needs the GIL, the
finalising interpreter ends the thread instead, and the C++ runtime aborts the process
(exit 134, "terminate called without an active exception") after the command has
printed its result: about 2% of runs of a short command. Here Arrow opens the file
itself (its buffers own no Python object) and reads it on the calling thread, without
pre-buffering on the I/O pool, so nothing of the read outlives the call.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


def read_table(
    path: str | os.PathLike[str], columns: Collection[str] | None = None
) -> pa.Table:
    """The Parquet file at ``path`` (only ``columns``, when given) as an Arrow table."""
    return pq.read_table(
        os.fspath(path),
        columns=None if columns is None else list(columns),
        use_threads=False,
        pre_buffer=False,
    )


def read_frame(
    path: str | os.PathLike[str], columns: Collection[str] | None = None
) -> pd.DataFrame:
    """The Parquet file at ``path`` (only ``columns``, when given) as a DataFrame."""
    return read_table(path, columns).to_pandas(use_threads=False)
