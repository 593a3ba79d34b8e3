"""Training from logs: the join, corrupt logs, the gate, MLflow registration and promotion."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner
from logs_factory import T0, decision_row, reward_row, simulate_logs, write_logs

from policies.catalog import load_catalog
from policies.registry import load_policy, make_policy
from policies.types import Action, Context
from training.data import TrainingDataError, join_logs, load_training_set
from training.train import TrainConfig, run_training

CATALOG = load_catalog()
ACTIONS = [
    Action("a", "email", {"category": "marketing"}),
    Action("b", "in_app", {"category": "marketing"}),
]


def ctx(i: int) -> Context:
    return Context(f"c-{i}", {"segment": "x"}, {"page": "cart"}, "cart_abandoned", T0 + i)


def test_join_counts_every_case() -> None:
    pmf = [0.5, 0.5]
    decisions = [decision_row(f"e{i}", ctx(i), ACTIONS, pmf, i % 2, T0 + i) for i in range(6)]
    decisions.append(decisions[0])  # the same decision logged by two replicas
    bad = [
        {**decision_row("p0", ctx(10), ACTIONS, pmf, 0, T0), "probability": 0.0},
        {**decision_row("pnan", ctx(11), ACTIONS, pmf, 0, T0), "probability": float("nan")},
        {**decision_row("pbig", ctx(12), ACTIONS, pmf, 0, T0), "probability": 1.5},
        {**decision_row("mismatch", ctx(13), ACTIONS, [0.2, 0.3, 0.5], 0, T0)},
        {**decision_row("noact", ctx(14), ACTIONS, pmf, 0, T0), "action_id": None},
        {**decision_row("json", ctx(15), ACTIONS, pmf, 0, T0), "customer_features": "{not json"},
    ]
    pending = decision_row("pending", ctx(20), ACTIONS, pmf, 0, T0 + 10_000)
    rewards = [
        reward_row("e0", 1.0, T0 + 5),
        reward_row("e0", 1.0, T0 + 6, counted=False, duplicate=True),  # duplicate post
        reward_row("e1", 3.0, T0 + 5),
        reward_row("e2", 7.0, T0 + 99_999, counted=False, late=True),  # after the window
        reward_row("ghost", 1.0, T0 + 5),  # orphan
    ]
    ts = join_logs(
        pd.DataFrame([*decisions, *bad, pending]), pd.DataFrame(rewards), CATALOG, now=T0 + 5000
    )
    r = ts.report
    assert r.decisions == 13
    assert dict(r.skipped) == {
        "bad_probability": 3,
        "ranking_mismatch": 1,
        "no_action": 1,
        "corrupt_json": 1,
    }
    assert (r.rewarded, r.defaulted, r.pending) == (2, 4, 1)
    assert (r.orphan_rewards, r.late_rewards, r.duplicate_rewards) == (1, 1, 1)
    got = dict(zip(ts.frame["event_id"], ts.frame["reward"], strict=True))
    assert got == {"e0": 1.0, "e1": 3.0, "e2": 0.0, "e3": 0.0, "e4": 0.0, "e5": 0.0}
    # features come from the log, as the policy saw them
    assert ts.batch.contexts[0].customer == {"segment": "x"}


def test_holdout_rows_are_not_learned_from() -> None:
    rows = [decision_row(f"e{i}", ctx(i), ACTIONS, [0.5, 0.5], 0, T0 + i) for i in range(3)]
    rows[1] = {**rows[1], "variant": "holdout"}
    ts = join_logs(pd.DataFrame(rows), pd.DataFrame(), CATALOG, now=T0 + 1e6)
    assert list(ts.frame["event_id"]) == ["e0", "e2"] and ts.report.skipped["holdout"] == 1


def test_sum_mode_adds_counted_rewards() -> None:
    decisions = [decision_row("e0", ctx(0), ACTIONS, [0.5, 0.5], 0, T0)]
    rewards = [reward_row("e0", 1.0, T0 + 1), reward_row("e0", 2.0, T0 + 2)]
    ts = join_logs(
        pd.DataFrame(decisions), pd.DataFrame(rewards), CATALOG, T0 + 9999, reward_mode="sum"
    )
    assert ts.batch.rewards.tolist() == [3.0]


def test_truncated_parquet_is_skipped_and_counted(tmp_path) -> None:
    decisions = [decision_row(f"e{i}", ctx(i), ACTIONS, [0.5, 0.5], 0, T0 + i) for i in range(4)]
    write_logs(tmp_path, decisions, [])
    good = (tmp_path / "decisions" / "part-0.parquet").read_bytes()
    (tmp_path / "decisions" / "part-1.parquet").write_bytes(good[: len(good) // 2])
    ts = load_training_set(tmp_path, CATALOG, now=T0 + 1e6)
    assert len(ts) == 4 and ts.report.files_skipped == ["part-1.parquet: ArrowInvalid"]


def test_empty_or_all_corrupt_logs_are_clear_errors(tmp_path) -> None:
    with pytest.raises(TrainingDataError, match="no decision logs"):
        load_training_set(tmp_path, CATALOG, now=T0)
    bad = {**decision_row("x", ctx(0), ACTIONS, [0.5, 0.5], 0, T0), "probability": 0.0}
    with pytest.raises(TrainingDataError, match="no usable logged decisions"):
        join_logs(pd.DataFrame([bad]), pd.DataFrame(), CATALOG, now=T0 + 1e6)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, problem):
    """Uniform-logged data → `run_training` with real VW and a real MLflow SQLite store."""
    home = tmp_path_factory.mktemp("ws")
    decisions, rewards = simulate_logs(problem, make_policy("uniform"), 3000, seed=1)
    write_logs(home / "logs", decisions, rewards)
    uri = f"sqlite:///{home / 'mlflow.db'}"
    results = run_training(
        home / "logs", CATALOG, uri, TrainConfig(kind="vw-cb", promote=True), now=T0 + 1e6
    )
    return home, uri, results


def test_training_registers_and_promotes_when_the_gate_passes(trained) -> None:
    from training import tracking

    _, uri, results = trained
    (res,) = results
    assert res.decision_point == "cart_abandoned" and res.verdict.passed and res.promoted
    assert res.n_train + res.n_holdout == 3000
    assert res.ope["candidate"]["dr"]["value"] > res.ope["uniform"]["dr"]["value"] + 0.1
    champ = tracking.champion_version("cart_abandoned", uri)
    assert champ is not None and champ.version == res.version and champ.kind == "vw-cb"
    import mlflow

    run = mlflow.MlflowClient(uri).get_run(res.run_id)
    assert run.data.tags["data.digest"] == res.data_digest
    assert run.data.metrics["candidate.dr.value"] == pytest.approx(
        res.ope["candidate"]["dr"]["value"]
    )
    assert "PASS" in run.data.tags["gate.verdict"]
    # the candidate's support and overlap diagnostics are metrics of the run too
    assert run.data.metrics["candidate.diagnostics.ess"] == pytest.approx(
        res.diagnostics["candidate"]["ess"]
    )
    assert run.data.metrics["candidate.diagnostics.support"] > 0.9
    assert "candidate.clipped_ips.biased" not in run.data.metrics
    assert run.data.params["exploration"] and run.data.tags["policy_kind"] == "vw-cb"
    client = mlflow.MlflowClient(uri)
    version = client.get_model_version("maestro-cart_abandoned", res.version)
    assert version.tags == {"policy_kind": "vw-cb", "decision_point": "cart_abandoned"}
    # the OPE metrics are the run's and also linked to the logged model, in one batch
    (logged,) = client.search_logged_models(experiment_ids=[run.info.experiment_id])
    assert {m.key: m.value for m in logged.metrics} == run.data.metrics


def test_the_registered_model_scores_a_batch_through_pyfunc(trained) -> None:
    import mlflow.pyfunc

    _, uri, (res,) = trained
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(f"models:/maestro-cart_abandoned/{res.version}")
    rows = pd.DataFrame(
        [
            {
                "customer_id": "c-1",
                "decision_point": "cart_abandoned",
                "customer": json.dumps({"segment": seg}),
                "context": "{}",
                "actions": json.dumps(
                    [
                        {
                            "id": "email_discount",
                            "channel": "email",
                            "features": {"offer": "discount", "category": "marketing"},
                        },
                        {"id": "no_contact", "channel": "none", "features": {"category": "none"}},
                    ]
                ),
            }
            for seg in ("bargain", "fatigued")
        ]
    )
    pmfs = model.predict(rows)
    assert len(pmfs) == 2 and all(abs(sum(p) - 1) < 1e-9 for p in pmfs)
    assert pmfs[0][0] > pmfs[0][1] and pmfs[1][1] > pmfs[1][0]  # learned per segment


def test_cli_promote_rolls_back_and_refuses_unknown_versions(trained, monkeypatch) -> None:
    from cli.main import cli
    from serving.settings import get_settings
    from training import tracking

    home, uri, (res,) = trained
    monkeypatch.setenv("MAESTRO_HOME", str(home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    get_settings.cache_clear()
    try:
        # a warm-started candidate on the same data is no better than the champion: refused
        again = run_training(
            home / "logs", CATALOG, uri, TrainConfig(kind="vw-cb", promote=True), now=T0 + 1e6
        )
        assert not again[0].verdict.passed and not again[0].promoted
        assert tracking.champion_version("cart_abandoned", uri).version == res.version
        # a manual promotion, then a rollback
        result = CliRunner().invoke(
            cli, ["promote", "--decision-point", "cart_abandoned", "--version", again[0].version]
        )
        assert result.exit_code == 0, result.output
        assert tracking.champion_version("cart_abandoned", uri).version == again[0].version
        result = CliRunner().invoke(
            cli, ["promote", "--decision-point", "cart_abandoned", "--version", res.version]
        )
        assert result.exit_code == 0, result.output
        assert tracking.champion_version("cart_abandoned", uri).version == res.version
        result = CliRunner().invoke(
            cli, ["promote", "--decision-point", "cart_abandoned", "--version", "99"]
        )
        assert result.exit_code == 2 and "no loadable version 99" in result.output
        assert tracking.champion_version("cart_abandoned", uri).version == res.version
        # warm start: the second candidate started from the champion's weights
        assert (
            load_policy(tracking.load_version_bytes("cart_abandoned", again[0].version, uri)).kind
            == "vw-cb"
        )
    finally:
        get_settings.cache_clear()


def test_cli_evaluate_bring_your_own_logs(tmp_path) -> None:
    from cli.main import cli

    path = tmp_path / "logs.parquet"
    pd.DataFrame(
        {
            "reward": [1.0, 0.0, 1.0, 0.0],
            "probability": [0.5, 0.5, 0.25, 0.25],
            "target_probability": [1.0, 0.0, 0.5, 0.5],
        }
    ).to_parquet(path)
    result = CliRunner().invoke(cli, ["evaluate", "--logs", str(path)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["n"] == 4 and "dm" not in out["estimators"]
    # four events are too few for a normal interval: said in the JSON and on stderr
    assert out["diagnostics"]["ess"] < 30 and len(out["warnings"]) == 1
    assert result.stderr.startswith("maestro: warning: effective sample size")
    # IPS by hand: mean(r * pi / p) = (1*2 + 0 + 1*2 + 0) / 4 = 1.0
    assert out["estimators"]["ips"]["value"] == pytest.approx(1.0)
    pd.DataFrame({"reward": [1.0]}).to_parquet(path)
    result = CliRunner().invoke(cli, ["evaluate", "--logs", str(path)])
    assert (
        result.exit_code == 2
        and "missing column(s) probability, target_probability" in result.output
    )


def test_cli_evaluate_accepts_exactly_the_forms_its_help_names(trained, monkeypatch) -> None:
    from cli.main import cli
    from serving.settings import get_settings

    home, uri, (res,) = trained
    monkeypatch.setenv("MAESTRO_HOME", str(home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    get_settings.cache_clear()
    try:
        help_text = CliRunner().invoke(cli, ["evaluate", "--help"]).output
        assert "DECISION_POINT@VERSION" in help_text and "models:/" not in help_text
        result = CliRunner().invoke(cli, ["evaluate", "--policy", "champion"])
        assert result.exit_code == 0, result.output
        rows = [line for line in result.output.splitlines() if line.startswith("cart_abandoned")]
        assert {line.split()[1] for line in rows} >= {"policy", "logging", "uniform", "champion"}
        result = CliRunner().invoke(cli, ["evaluate", "--policy", "champion", "--json"])
        out = json.loads(result.stdout)
        point = out["decision_points"]["cart_abandoned"]
        assert point["n"] == 750  # train's 25% holdout
        # every compared policy's evaluation carries its support and overlap diagnostics
        assert set(point["diagnostics"]) == {"policy", "logging", "uniform", "champion"}
        assert point["diagnostics"]["logging"]["support"] == 1.0
        assert point["diagnostics"]["uniform"]["ess"] == pytest.approx(750)  # uniform logs
        assert point["warnings"] == [] and result.stderr == ""
        version = f"cart_abandoned@{res.version}"
        result = CliRunner().invoke(cli, ["evaluate", "--policy", version, "--json"])
        assert result.exit_code == 0, result.output
        assert list(json.loads(result.stdout)["decision_points"]) == ["cart_abandoned"]
        for bad, says in [
            ("models:/maestro-cart_abandoned@champion", "is not a policy kind"),
            ("cart_abandoned@latest", "is not a policy kind"),
            ("nowhere@1", "no decision point 'nowhere'"),
            ("default@1", "no logged decisions at 'default'"),
        ]:
            result = CliRunner().invoke(cli, ["evaluate", "--policy", bad])
            assert result.exit_code == 2, (bad, result.output)
            assert says in result.output and len(result.output.strip().splitlines()) == 1
    finally:
        get_settings.cache_clear()


def test_never_activated_decisions_are_not_learned_from(tmp_path) -> None:
    """At an ``activation: required`` point only activated decisions are learned from,
    whether the activation came before or after the reward (a real SQLite contact store)."""
    from dataclasses import replace

    from policies.catalog import Catalog
    from serving.state.contacts_sqlite import SQLiteContactStore

    points = dict(CATALOG.decision_points)
    points["cart_abandoned"] = replace(points["cart_abandoned"], activation="required")
    catalog = Catalog(points)
    rows = [decision_row(f"e{i}", ctx(i), ACTIONS, [0.5, 0.5], 0, T0 + i) for i in range(4)]
    other = decision_row("d0", Context("c-9", {}, {}, "default", T0), ACTIONS, [0.5, 0.5], 0, T0)
    rows.append({**other, "decision_point": "default"})
    rewards = [reward_row("e1", 1.0, T0 + 5), reward_row("e3", 1.0, T0 + 5)]
    store = SQLiteContactStore(tmp_path / "contacts.db")
    store.activate("e1", T0 + 2)  # before its reward
    store.activate("e3", T0 + 50)  # after its reward
    ts = join_logs(pd.DataFrame(rows), pd.DataFrame(rewards), catalog, now=T0 + 1e6,
                   activated=store.activated)
    store.close()
    assert sorted(ts.frame["event_id"]) == ["d0", "e1", "e3"]  # default needs no activation
    assert ts.report.skipped["inactive"] == 2
    assert dict(zip(ts.frame["event_id"], ts.frame["reward"], strict=True))["e3"] == 1.0
    # without the lookup (no activation-required point served) nothing is left out
    assert len(join_logs(pd.DataFrame(rows), pd.DataFrame(rewards), catalog,
                         now=T0 + 1e6).frame) == 5


def test_cross_fitting_is_for_scarce_events(trained) -> None:
    """3,000 events: the gate is cross-fitted (every event held out once, 4 folds in the
    run's params); with ``crossfit_below`` under the event count, the single 25% split."""
    import mlflow

    home, uri, (res,) = trained
    assert res.verdict.n == 3000 and "cross-fitted over 4" in res.verdict.summary()
    assert res.n_holdout == 750  # the OPE table: the newest fold
    client = mlflow.MlflowClient(uri)
    assert client.get_run(res.run_id).data.params["folds"] == "4"
    (split,) = run_training(
        home / "logs", CATALOG, uri, TrainConfig(kind="vw-cb", crossfit_below=3000), now=T0 + 1e6
    )
    assert split.verdict.n == split.n_holdout == 750 and not split.promoted
    assert "cross-fitted" not in split.verdict.summary()
    assert client.get_run(split.run_id).data.params["folds"] == "1"
