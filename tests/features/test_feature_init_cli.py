"""``maestro init`` (the features part) through the real CLI, in process."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

pytestmark = [pytest.mark.integration,
              pytest.mark.filterwarnings("ignore:Stream feature views:RuntimeWarning")]


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from serving.settings import get_settings

    home = tmp_path / "maestro-data"
    monkeypatch.setenv("MAESTRO_HOME", str(home))
    monkeypatch.delenv("MAESTRO_ONLINE_STORE", raising=False)
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


def test_maestro_init_builds_then_leaves_the_feature_store_alone(cli_home: Path) -> None:
    from cli.main import cli

    runner = CliRunner()
    first = runner.invoke(cli, ["init", "--customers", "30", "--seed", "5"])
    assert first.exit_code == 0, first.output
    assert "30 customers" in first.output and "generated" in first.output
    repo = cli_home / "feature_repo"
    frame = pd.read_parquet(repo / "data" / "customers.parquet")
    assert list(frame["customer_id"]) == [f"c-{i:06d}" for i in range(30)]

    second = runner.invoke(cli, ["init", "--customers", "30", "--seed", "5"])
    assert second.exit_code == 0, second.output
    assert "data unchanged" in second.output and "already materialized" in second.output

    third = runner.invoke(cli, ["init", "--customers", "20", "--seed", "5"])  # a new base
    assert third.exit_code == 0, third.output
    from features.feast.source import FeastFeatureSource

    src = FeastFeatureSource(repo, timeout=2.0)
    assert src.get("c-000019").known and not src.get("c-000025").known  # old rows cleared
    src.close()


def test_maestro_init_rejects_bad_usage(cli_home: Path) -> None:
    from cli.main import cli

    result = CliRunner().invoke(cli, ["init", "--customers", "0"])
    assert result.exit_code == 2
    assert not (cli_home / "feature_repo").exists()


def test_unknown_online_store_is_a_one_line_error(cli_home: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from cli.main import cli

    monkeypatch.setenv("MAESTRO_ONLINE_STORE", "cassandra://x")
    result = CliRunner().invoke(cli, ["init", "--customers", "5"])
    assert result.exit_code == 1
    assert "unknown online store" in result.output and "Traceback" not in result.output


def test_init_materialises_again_when_the_online_store_was_deleted(tmp_path: Path) -> None:
    from features.feast.source import FeastFeatureSource
    from features.workspace import init_feature_workspace

    home = tmp_path / "home"
    init_feature_workspace(home, customers=10, seed=1)
    (home / "feature_repo" / "data" / "online_store.db").unlink()
    summary = init_feature_workspace(home, customers=10, seed=1)
    assert not summary.generated and summary.materialized
    src = FeastFeatureSource(home / "feature_repo", timeout=2.0)
    assert src.get("c-000009").known
    src.close()


def test_a_redis_online_store_may_name_its_database() -> None:
    from features.errors import WorkspaceError
    from features.workspace import online_store_config

    assert online_store_config("redis://10.0.0.5:6380/3")["connection_string"] == (
        "10.0.0.5:6380,db=3"
    )
    assert online_store_config("redis://cache")["connection_string"] == "cache:6379"
    with pytest.raises(WorkspaceError, match="must be a number"):
        online_store_config("redis://cache:6379/x")
