"""``maestro train --promote --staged``: a candidate that passes the gate becomes the
decision point's shadow, and the champion alias does not move."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from cli_run import maestro, workspace_env

DP = "cart_abandoned"


def test_a_passing_candidate_becomes_the_shadow_not_the_champion(tmp_path: Path) -> None:
    from policies.catalog import DEFAULT_CATALOG, load_catalog
    from policies.registry import make_policy
    from training import stages
    from training.synthetic_logs import write_synthetic_logs
    from training.tracking import register_policy

    home = tmp_path / "ws"
    home.mkdir()
    with resources.as_file(resources.files("policies").joinpath(DEFAULT_CATALOG)) as src:
        shutil.copyfile(src, home / "catalog.yaml")
    catalog = load_catalog(home / "catalog.yaml")
    uri = f"sqlite:///{home / 'mlflow.db'}"
    # a champion that says no_contact (true reward 0.04) to everyone: a learned candidate
    # beats it clearly
    worst = make_policy("rules", priorities={DP: ["no_contact"]})
    register_policy(worst.save(), DP, uri, kind="rules", params=worst.params, champion=True)
    champion = stages.read_state(DP, uri).champion
    write_synthetic_logs(home / "logs", catalog, make_policy("uniform"), 12000)

    env = workspace_env(home)
    bad = maestro(["train", "--staged", "--decision-point", DP], env)
    assert bad.returncode == 2 and "--staged: only with --promote" in bad.stderr

    done = maestro(
        ["train", "--policy", "linucb", "--decision-point", DP, "--promote", "--staged"], env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    state = stages.read_state(DP, uri)
    assert state.champion == champion  # the champion alias never moves when staged
    assert "gate PASS" in done.stdout, done.stdout
    assert "staged as shadow" in done.stdout
    assert f"{DP}: shadow -> version {state.shadow}" in done.stdout
    assert state.shadow is not None and state.shadow != champion
    assert state.stage == "shadow"
