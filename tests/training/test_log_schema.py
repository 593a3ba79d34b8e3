"""The decision log's one owner (``training.logs``): records, Parquet schema and the
columns every reader and writer uses agree, and the columns are those of the contract."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from policies.catalog import load_catalog
from policies.registry import make_policy
from serving.eventlog.log import EventLog
from serving.eventlog.roll import _json_schema
from training.logs import reader, schema
from training.logs.records import DecisionRecord, EpochSeconds, RewardRecord
from training.synthetic_logs import write_synthetic_logs

_TIME = pa.timestamp("us", tz="UTC")

#: CONTRACT.md "Logged data", as the datasets are written: these names, types and order
CONTRACT_DECISIONS = [
    ("event_id", pa.string()),
    ("request_id", pa.string()),
    ("timestamp", _TIME),
    ("customer_id", pa.string()),
    ("decision_point", pa.string()),
    ("customer_features", pa.string()),
    ("context", pa.string()),
    ("actions", pa.string()),
    ("probabilities", pa.string()),
    ("excluded", pa.string()),
    ("action_id", pa.string()),
    ("channel", pa.string()),
    ("probability", pa.float64()),
    ("policy", pa.string()),
    ("policy_version", pa.string()),
    ("variant", pa.string()),
    ("explored", pa.bool_()),
    ("degraded", pa.bool_()),
    ("customer_known", pa.bool_()),
    ("reward_deadline", _TIME),
    ("shadow_policy", pa.string()),
    ("shadow_policy_version", pa.string()),
    ("shadow_action_id", pa.string()),
    ("shadow_probability", pa.float64()),
    ("anonymous_id", pa.string()),
    ("segments", pa.list_(pa.string())),
    ("learned_since", pa.int64()),  # online learning: updates since the served version
    ("shadow_logged_probability", pa.float64()),
    ("replica", pa.string()),
]
CONTRACT_REWARDS = [
    ("event_id", pa.string()),
    ("reward", pa.float64()),
    ("timestamp", _TIME),
    ("counted", pa.bool_()),
    ("duplicate", pa.bool_()),
    ("late", pa.bool_()),
    ("source", pa.string()),
    ("attribution", pa.string()),
    ("replica", pa.string()),
]


@pytest.mark.parametrize(
    ("record_type", "expected"),
    [(DecisionRecord, CONTRACT_DECISIONS), (RewardRecord, CONTRACT_REWARDS)],
    ids=["decisions", "rewards"],
)
def test_the_schema_is_the_contract_and_follows_the_records(record_type, expected) -> None:
    derived = schema.arrow_schema(record_type)
    assert derived.equals(pa.schema(expected), check_metadata=True)
    assert derived.names == [f.name for f in dataclasses.fields(record_type)]
    assert all(f.nullable for f in derived)
    # the spool writer replaces the last field's value by its own name
    assert dataclasses.fields(record_type)[-1].name == "replica"


def test_a_field_added_to_a_record_is_a_column_and_an_unmapped_type_fails() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Wider:
        event_id: str
        opened_at: EpochSeconds
        score: float | None
        flag: bool
        tags: list[str] | None

    assert schema.arrow_schema(Wider).equals(
        pa.schema(
            [
                ("event_id", pa.string()),
                ("opened_at", _TIME),
                ("score", pa.float64()),
                ("flag", pa.bool_()),
                ("tags", pa.list_(pa.string())),
            ]
        )
    )

    @dataclasses.dataclass(frozen=True)
    class Unmapped:
        tags: dict[str, str]

    with pytest.raises(TypeError, match="no Parquet column type"):
        schema.arrow_schema(Unmapped)


def test_readers_and_the_spool_use_columns_of_the_schema() -> None:
    decision_columns = set(schema.DECISION_SCHEMA.names)
    assert decision_columns >= reader.TRAINING_COLUMNS
    assert set(reader.ROW_COLUMNS) - {reader.T_EPOCH} <= decision_columns
    assert reader.T_EPOCH not in decision_columns  # derived by the join, never logged
    every = decision_columns | set(schema.REWARD_SCHEMA.names)
    constants = {
        name: value
        for name, value in vars(schema).items()
        if name.isupper() and isinstance(value, str) and name != "AS_TIMESTAMP"
    }
    assert constants and set(constants.values()) <= every
    spool = _json_schema()
    assert every <= set(spool.names)
    for f in (*schema.DECISION_SCHEMA, *schema.REWARD_SCHEMA):
        want = pa.float64() if f.name in schema.TIME_COLUMNS else f.type
        assert spool.field(f.name).type == want
    assert {"timestamp", "reward_deadline"} == schema.TIME_COLUMNS
    assert {
        "explored", "degraded", "customer_known", "counted", "duplicate", "late"
    } == schema.BOOL_COLUMNS


def _decision(event_id: str) -> DecisionRecord:
    now = time.time()
    return DecisionRecord(
        event_id=event_id,
        request_id=None,
        timestamp=now,
        customer_id="c-1",
        decision_point="cart_abandoned",
        customer_features='{"consent_email":true}',
        context='{"page":"cart"}',
        actions='[{"id":"a","channel":"email","features":{}}]',
        probabilities="[1.0]",
        excluded="[]",
        action_id="a",
        channel="email",
        probability=1.0,
        policy="rules",
        policy_version="1",
        variant="champion",
        explored=True,
        degraded=False,
        customer_known=True,
        reward_deadline=now + 60,
        shadow_policy=None,
        shadow_policy_version=None,
        shadow_action_id=None,
        shadow_probability=None,
    )


def test_the_service_and_the_synthetic_generator_write_the_same_parquet_schema(
    tmp_path: Path,
) -> None:
    served, synthetic = tmp_path / "served", tmp_path / "synthetic"
    log = EventLog(served, roll_seconds=3600).open()
    try:
        log.append_decision(_decision("e1"))
        log.record_reward("e1", 1.0, late=False)
    finally:
        log.close()
    write_synthetic_logs(synthetic, load_catalog(), make_policy("uniform"), 40, customers=50)
    for sub, expected in (("decisions", CONTRACT_DECISIONS), ("rewards", CONTRACT_REWARDS)):
        (a,) = (served / sub).glob("part-*.parquet")
        (b,) = (synthetic / sub).glob("part-*.parquet")
        written, generated = pq.read_schema(a), pq.read_schema(b)
        assert written.equals(generated, check_metadata=True), sub
        assert written.equals(pa.schema(expected)), sub


def test_the_spool_line_carries_every_field_and_the_replica(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "logs", roll_seconds=3600).open()
    try:
        record = _decision("e1")
        log.append_decision(record)
        log.sync()
        (segment,) = log.spool_dir.glob("seg-*.jsonl")
        line = orjson.loads(segment.read_bytes())
    finally:
        log.close()
    expected = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    assert line == {**expected, "replica": log.name, "_t": "d"}


def _make_old(directory: Path) -> None:
    """Rewrite every part under ``directory`` as the log was written before
    ``customer_known`` existed (the same rows, that column absent)."""
    old = pa.schema([c for c in CONTRACT_DECISIONS if c[0] != "customer_known"])
    for path in directory.glob("part-*.parquet"):
        pq.write_table(pq.read_table(path).drop_columns(["customer_known"]), path)
        assert pq.read_schema(path).equals(old)


def test_parts_written_before_customer_known_still_read_and_train(tmp_path: Path) -> None:
    from training.data import load_training_set
    from training.logs.dataset import LogReport, read_parquet_dir

    catalog, logs = load_catalog(), tmp_path / "logs"
    write_synthetic_logs(logs, catalog, make_policy("uniform"), 40, customers=50, seed=1)
    _make_old(logs / "decisions")
    newer = tmp_path / "newer"  # a later part in today's schema, in the same dataset
    write_synthetic_logs(newer, catalog, make_policy("uniform"), 30, customers=50, seed=2)
    for sub in ("decisions", "rewards"):
        for path in (newer / sub).glob("part-*.parquet"):
            path.rename(logs / sub / f"part-zz-{path.name}")
    report = LogReport()
    frame = read_parquet_dir(logs / "decisions", report)
    assert report.files_read == 2 and not report.files_skipped and len(frame) == 70
    assert frame["customer_known"].isna().sum() == 40
    assert frame["customer_known"].dropna().tolist() == [True] * 30
    # pandas over the directory keeps the column when given the schema
    direct = pd.read_parquet(logs / "decisions", schema=schema.DECISION_SCHEMA)
    assert len(direct) == 70 and direct["customer_known"].isna().sum() == 40
    training = load_training_set(logs, catalog, now=time.time() + 10 * 86_400)
    assert training.report.decisions == 70 and len(training) == 70


def test_a_spool_segment_from_before_customer_known_rolls_with_it_null(tmp_path: Path) -> None:
    from serving.eventlog.roll import roll_segment
    from training.logs.location import LogLocation

    line = {f.name: getattr(_decision("e-old"), f.name) for f in dataclasses.fields(DecisionRecord)}
    del line["customer_known"]
    segment = tmp_path / "seg-old.jsonl"
    segment.write_bytes(orjson.dumps({**line, "replica": "old", "_t": "d"}) + b"\n")
    torn = tmp_path / "seg-torn.jsonl"  # a torn last line: the line-by-line reader rolls it
    torn.write_bytes(segment.read_bytes().replace(b"e-old", b"e-torn") + b'{"event_id": "e-')
    for path in (segment, torn):
        rolled = roll_segment(path, LogLocation.of(tmp_path), path.stem)
        assert rolled.records == 1
    table = pq.read_table(tmp_path / "decisions")
    assert table.schema.field("customer_known").type == pa.bool_()
    assert sorted(table["event_id"].to_pylist()) == ["e-old", "e-torn"]
    assert table["customer_known"].to_pylist() == [None, None]
