"""The embedded implementations satisfy the decision service's ports
(``serving.service.ports``), so a networked one only has to do the same."""

from __future__ import annotations

from pathlib import Path

from features.agents import AgentSource
from features.source import InMemoryFeatureSource
from policies.catalog import load_catalog
from serving.eventlog.log import EventLog
from serving.experiments.variants import AssignmentTable, Experiments, parse_experiments
from serving.service.feature_layer import InMemoryFeatureLayer
from serving.service.policy_store import PolicyStore
from serving.service.ports import (
    AgentRoster,
    Arm,
    Assignments,
    DecisionLog,
    FeatureSource,
    PolicySource,
)


def test_embedded_implementations_satisfy_the_ports(tmp_path: Path) -> None:
    catalog = load_catalog(None)
    layer = InMemoryFeatureLayer(InMemoryFeatureSource({}))
    assert isinstance(layer, FeatureSource)
    assert isinstance(PolicyStore(catalog, None), PolicySource)
    assert isinstance(EventLog(tmp_path / "logs"), DecisionLog)
    config = parse_experiments({"salt": "x", "holdout": 0.5}, catalog)
    experiments = Experiments(config, catalog, AssignmentTable(tmp_path / "exp.db"))
    try:
        assert isinstance(experiments, Assignments)
        assert isinstance(experiments.assign("c-1", "cart_abandoned"), Arm)
    finally:
        experiments.close()
    assert issubclass(AgentSource, AgentRoster)  # methods only: checked on the class
