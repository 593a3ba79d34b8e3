"""The retail-bank walkthrough notebook runs from top to bottom (so it cannot rot): the
example workspace, every source's bad-row report, materialize, a decision that sees the
custom features, simulated traffic against the service, and a training run."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.integration
NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "retail_bank.ipynb"


def test_retail_bank_notebook_executes(tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = nb.cells[1].source
    nb.cells[1].source = params.replace("CUSTOMERS = 200", "CUSTOMERS = 40").replace(
        "STEPS = 1_500", "STEPS = 300"
    )
    assert nb.cells[1].source != params
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in outputs)
    for line in (
        "source crm: 43 rows read, 40 staged, 3 rejected",
        "  wrong_type:amount_due: 1",
        "  wrong_type:web_page_views: 1",
        "source crm: 40 new staged rows, 40 customers written to the online store",
        "'degraded': False",
        "'products_held': ",
        "rules: mean reward",
        "default: run ",
    ):
        assert line in text, line
    assert (tmp_path / "retail_bank_home" / "simulation" / "report.html").exists()
