"""Where the rolled log lives: one dataset named by a path or a URI, read and written
through pyarrow's filesystems.

The decision and reward logs are two Parquet datasets, ``<root>/decisions/`` and
``<root>/rewards/``, of ``part-*.parquet`` files. ``<root>`` is by default
``$MAESTRO_HOME/logs``; ``MAESTRO_LOG_DATASET`` names a shared one instead — a path or
``file://`` URI on a volume every node mounts, or an object store by its scheme
(``s3://bucket/prefix``, ``gs://…``, ``abfs://…``, as :func:`pyarrow.fs.FileSystem.from_uri`
resolves them). Every replica of every node rolls into it, and ``maestro train``, the
experiment report and erasure read it as one dataset: part names carry the writing spool's
name (``<host>-<pid>-<random>``) and segment number, so two nodes never write the same name.

Writing a part is atomic either way: on a local or mounted filesystem through a temporary
file, ``fsync`` and a rename; on an object store by a single upload, which becomes
visible whole or not at all (they have no rename).
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

KINDS = ("decisions", "rewards")


@dataclass(frozen=True)
class LogLocation:
    """The log dataset's filesystem and root path in it (see the module docstring)."""

    filesystem: Any  # pyarrow.fs.FileSystem
    root: str
    uri: str

    @classmethod
    def of(cls, location: str | os.PathLike[str] | LogLocation) -> LogLocation:
        """Resolve a path or URI; ``ValueError`` naming it when pyarrow cannot."""
        if isinstance(location, LogLocation):
            return location
        import pyarrow.fs as pafs

        text = os.fspath(location)
        if "://" not in text:
            return cls(pafs.LocalFileSystem(), str(Path(text).absolute()), text)
        try:
            filesystem, root = pafs.FileSystem.from_uri(text)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
            raise ValueError(f"log dataset {text!r}: {exc}") from None
        return cls(filesystem, root.rstrip("/"), text)

    @property
    def is_local(self) -> bool:
        import pyarrow.fs as pafs

        return isinstance(self.filesystem, pafs.LocalFileSystem)

    def directory(self, kind: str) -> str:
        """The root of one dataset (``kind``: ``decisions`` or ``rewards``)."""
        return f"{self.root}/{kind}"

    def ensure(self) -> None:
        """Create both datasets' directories (object stores need none)."""
        for kind in KINDS:
            self.filesystem.create_dir(self.directory(kind), recursive=True)

    def parts(self, kind: str) -> list[str]:
        """Paths of dataset ``kind``'s Parquet files, sorted (none when it does not exist)."""
        return self.files(self.directory(kind))

    def files(self, directory: str) -> list[str]:
        """Paths of the Parquet files under ``directory`` of this filesystem, sorted."""
        import pyarrow.fs as pafs

        selector = pafs.FileSelector(directory, allow_not_found=True, recursive=True)
        infos = self.filesystem.get_file_info(selector)
        return sorted(
            i.path for i in infos
            if i.type == pafs.FileType.File and i.base_name.endswith(".parquet")
            and not i.base_name.startswith(".")
        )

    def write(self, table: pa.Table, kind: str, name: str) -> None:
        """Write ``table`` as the part ``name`` of dataset ``kind``, atomically."""
        self.replace(table, f"{self.directory(kind)}/{name}")

    def replace(self, table: pa.Table, path: str) -> None:
        """Rewrite the existing part at ``path`` (a path :meth:`parts` returned), atomically."""
        if self.is_local:
            from training.logs.dataset import write_atomic

            write_atomic(table, Path(path))
            return
        pq.write_table(table, path, filesystem=self.filesystem, compression="zstd")

    def remove(self, path: str) -> None:
        self.filesystem.delete_file(path)

    def read(self, path: str, columns: Collection[str] | None = None) -> pa.Table:
        """One part (only ``columns``, when given), read on the calling thread (see
        :mod:`core.parquet`: no Python file object whose buffers outlive the call)."""
        return pq.read_table(
            path, filesystem=self.filesystem, columns=None if columns is None else list(columns),
            use_threads=False, pre_buffer=False,
        )

    def schema_names(self, path: str) -> list[str]:
        with self.filesystem.open_input_file(path) as fh:
            return pq.read_schema(fh).names
