"""The rolled log as one dataset named by a path or URI (``MAESTRO_LOG_DATASET``): replicas
of two "nodes" (two workspaces, each its own spool) roll into one shared dataset, training
reads it as one, erasure leaves nothing of the customer in it. Run on a ``file://`` URI
(real Parquet on disk) and on pyarrow's in-memory filesystem, which, like an object store,
is not the local one (no rename, no fsync): the code path an ``s3://`` dataset takes."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from logs_factory import decision_record
from pydantic import ValidationError

from serving.eventlog.log import EventLog
from serving.settings import Settings
from training.logs.dataset import LogReport, read_log
from training.logs.location import LogLocation


def _shared(kind: str, tmp_path: Path) -> LogLocation:
    if kind == "file":
        return LogLocation.of(f"file://{tmp_path / 'shared' / 'logs'}")
    return LogLocation(pafs._MockFileSystem(), "bucket/maestro/logs", "mock://bucket")


def _node(tmp_path: Path, name: str, dataset: LogLocation) -> EventLog:
    """One node's replica: its spool on the node's disk, its rolls into ``dataset``."""
    return EventLog(tmp_path / name / "logs", roll_seconds=3600, dataset=dataset).open()


@pytest.fixture(params=["file", "in-memory"])
def dataset(request, tmp_path: Path) -> LogLocation:
    return _shared(request.param, tmp_path)


def test_two_nodes_roll_into_one_dataset_read_as_one(dataset, tmp_path: Path) -> None:
    t = time.time()
    nodes = [_node(tmp_path, name, dataset) for name in ("node-a", "node-b")]
    for n, log in enumerate(nodes):
        for i in range(5):
            log.append_decision(decision_record(f"e-{n}-{i}", f"c-{i}", t))
        log.record_reward(f"e-{n}-0", 1.0, late=False)
        log.close()  # rolls the spool into the shared dataset
    report = LogReport()
    decisions = read_log(dataset, "decisions", report)
    rewards = read_log(dataset, "rewards", report)
    assert sorted(decisions["event_id"]) == sorted(f"e-{n}-{i}" for n in (0, 1) for i in range(5))
    assert set(decisions["replica"]) == {log.name for log in nodes}  # no name collided
    assert sorted(rewards["event_id"]) == ["e-0-0", "e-1-0"] and report.files_read == 4
    for name in ("node-a", "node-b"):  # nothing rolled beside the spools
        assert not list((tmp_path / name / "logs").glob("decisions/*.parquet"))


def test_erasure_leaves_no_row_of_the_customer_in_the_shared_dataset(dataset, tmp_path) -> None:
    t = time.time()
    rolled = _node(tmp_path, "node-a", dataset)
    for i in range(4):
        rolled.append_decision(decision_record(f"a-{i}", "c-gone" if i % 2 else "c-kept", t))
    rolled.record_reward("a-1", 1.0, late=False)
    rolled.close()
    live = _node(tmp_path, "node-b", dataset)  # erases through the other node's replica
    live.append_decision(decision_record("b-0", "c-gone", t))
    erased = live.erase_customer("c-gone")
    live.close()
    assert erased == {"decisions": 3, "rewards": 1}
    decisions = read_log(dataset, "decisions", LogReport())
    assert sorted(decisions["event_id"]) == ["a-0", "a-2"]
    assert int((decisions["customer_id"] == "c-gone").sum()) == 0
    assert read_log(dataset, "rewards", LogReport()).empty


def test_training_reads_the_shared_dataset_by_its_uri(tmp_path: Path) -> None:
    from policies.catalog import load_catalog
    from policies.registry import make_policy
    from training.data import load_training_set
    from training.synthetic_logs import write_synthetic_logs

    shared = tmp_path / "mnt" / "logs"
    write_synthetic_logs(shared, load_catalog(), make_policy("uniform"), 60, customers=30)
    by_uri = load_training_set(f"file://{shared}", load_catalog(), now=time.time())
    by_path = load_training_set(shared, load_catalog(), now=time.time())
    assert len(by_uri) == len(by_path) == 60


@pytest.mark.parametrize(
    ("value", "message"),
    [("ftp://host/logs", "unknown scheme ftp://"), ("mem://x", "unknown scheme mem://")],
    ids=["ftp", "mem"],
)
def test_an_unknown_dataset_scheme_is_refused_naming_it(value: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(log_dataset=value)


def test_the_dataset_defaults_to_the_workspace_logs(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert settings.log_location == str(tmp_path / "logs")
    shared = Settings(home=tmp_path, log_dataset="s3://bucket/maestro/logs")
    assert shared.log_location == "s3://bucket/maestro/logs"
    assert shared.logs_dir == tmp_path / "logs"  # the spools stay on the node
