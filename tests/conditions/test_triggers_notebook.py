"""The triggers walkthrough notebook runs from top to bottom (so it cannot rot): a segment, a
signed webhook destination and a dwell trigger in ``triggers.yaml``, outcome rewards with
linear attribution in the catalog, ``maestro serve`` as a process, one verified delivery for
the VIP and none for the non-VIP, and a purchase shared between the two contacts."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.integration
NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "triggers_walkthrough.ipynb"


def test_triggers_walkthrough_notebook_executes(tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in outputs)
    for line in (
        "champions: ok (2 decision points",
        "ready: {'ready': True, 'policies': True, 'features': True}",
        "deliveries received: 1\n",
        "signature verified: True\n",
        "trigger: vip_on_pricing | customer: c-",
        "decision: email_account_manager on email",
        "idempotency key is its event id: True",
        "for the non-VIP: []",
        "an earlier /decide: email_offer email",
        "reward 60.0 to the trigger decision, counted=True, attribution=linear",
        "reward 60.0 to the /decide decision, counted=True, attribution=linear",
        "server exited with 0",
        "segments: [['vip']]",
    ):
        assert line in text, line
    vip = re.search(r"VIP (c-\d+) [\d.]+ \| non-VIP (c-\d+)", text)
    assert vip is not None and f"customer: {vip.group(1)}" in text
    assert re.search(rf"{vip.group(1)}\s+churn_risk\s+email_account_manager", text)
    rolled = re.findall(r"60\.0\s+outcome:purchase\s+linear\s+True", text)
    assert len(rolled) == 2, text
