"""Example workspaces for ``maestro init --example NAME``: source exports shaped like real
systems of record, messy values and a few bad rows included, and the ``features.yaml``
that declares custom features over them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from features.errors import UnknownExample


def _retail_bank(home: Path, customers: int, seed: int) -> list[str]:
    from features.examples.retail_bank import write_example

    return write_example(home, customers, seed)


#: example name → writer(home, customers, seed) → the files it wrote
EXAMPLES: dict[str, Callable[[Path, int, int], list[str]]] = {"retail-bank": _retail_bank}


def write_example(name: str, home: Path | str, customers: int, seed: int) -> list[str]:
    """Write the example ``name`` into the workspace ``home``; the paths written."""
    writer = EXAMPLES.get(name)
    if writer is None:
        raise UnknownExample(f"unknown example {name!r} (examples: {', '.join(EXAMPLES)})")
    return writer(Path(home), customers, seed)
