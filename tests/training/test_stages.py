"""Rollout stages as MLflow aliases on a real SQLite registry: each move, each rollback
and the evidence it leaves."""

from __future__ import annotations

import pytest

from policies.registry import make_policy
from training import stages
from training.tracking import champion_version, register_policy

DP = "default"


@pytest.fixture()
def uri(tmp_path) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    policy = make_policy("uniform")
    for i in range(3):
        register_policy(policy.save(), DP, uri, kind="uniform", champion=i == 0)
    return uri


def test_shadow_canary_champion_moves(uri: str) -> None:
    assert stages.read_state(DP, uri).stage == "champion"
    assert stages.latest_version(DP, uri) == "3"
    s = stages.move_stage(DP, "shadow", "2", uri)
    assert (s.stage, s.shadow, s.champion) == ("shadow", "2", "1")
    s = stages.move_stage(DP, "canary", "2", uri, share=0.25)
    assert (s.stage, s.canary, s.shadow, s.share) == ("canary", "2", None, 0.25)
    s = stages.move_stage(DP, "champion", "2", uri)
    assert (s.stage, s.champion, s.previous, s.canary, s.watch) == ("watch", "2", "1", None, True)
    assert champion_version(DP, uri).version == "2"
    stages.end_watch(DP, uri)
    assert stages.read_state(DP, uri).stage == "champion"
    with pytest.raises(ValueError, match="stage must be one of"):
        stages.move_stage(DP, "beta", "2", uri)
    assert stages.read_state("nowhere", uri) == stages.StageState("nowhere")


def test_rollbacks_move_the_alias_back_and_record_the_evidence(uri: str) -> None:
    stages.move_stage(DP, "champion", "2", uri)
    state = stages.read_state(DP, uri)
    evidence = {"guardrail": "reward", "decisions": 321, "log_lr": 4.5, "threshold": 4.09}
    record = stages.roll_back(DP, state, evidence, uri)
    after = stages.read_state(DP, uri)
    assert (after.champion, after.stage, after.last_rollback["rolled_back_version"]) == (
        "1", "champion", "2"
    )
    stages.move_stage(DP, "canary", "3", uri, share=0.1)
    record = stages.roll_back(DP, stages.read_state(DP, uri), evidence, uri)
    after = stages.read_state(DP, uri)
    assert (after.canary, after.champion) == (None, "1")
    assert after.last_rollback == {k: v for k, v in record.items() if k != "run_id"}
    from mlflow import MlflowClient  # imported here: a test module imports no MLflow at collection

    client = MlflowClient(uri)  # not mlflow.set_tracking_uri: it would leak into os.environ
    experiment = client.get_experiment_by_name("maestro")
    runs = client.search_runs([experiment.experiment_id],
                              filter_string="tags.`rollback.guardrail` = 'reward'")
    import pandas as pd

    runs = pd.DataFrame([{**{f"tags.{k}": v for k, v in r.data.tags.items()},
                          **{f"metrics.{k}": v for k, v in r.data.metrics.items()}} for r in runs])
    assert len(runs) == 2
    assert set(runs["tags.rollback.rolled_back_version"]) == {"2", "3"}
    assert set(runs["metrics.decisions"]) == {321.0}
    with pytest.raises(ValueError, match="no canary or watched champion"):
        stages.roll_back(DP, stages.read_state(DP, uri), evidence, uri)
