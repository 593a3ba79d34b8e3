"""The training walkthrough notebook runs from top to bottom (so it cannot rot)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "training_walkthrough.ipynb"


def test_training_notebook_executes(tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells[1].source = nb.cells[1].source.replace("EVENTS = 12_000", "EVENTS = 3_000")
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    text = "".join(o.get("text", "") for o in outputs)
    assert (
        "registered version 1" in text
        and "registered versions of maestro-cart_abandoned: [1]" in text
    )
    # the paired gate's printout: estimate, interval, effective events, events needed
    assert "candidate − champion" in text and "95% CI [" in text and "events still needed" in text
    assert "cross-fitted over 4 chronological folds" in text
    assert "single split:" in text and "cross-fitted:" in text
    # the stages: a second version through shadow, canary (a share) and champion (watched)
    assert "registered version 2" in text
    assert re.search(r"stage shadow: champion=\S+ shadow=2 canary=None", text)
    assert re.search(r"stage canary: champion=\S+ shadow=None canary=2 \S+ share=0\.1", text)
    assert "stage champion: champion=2 " in text
