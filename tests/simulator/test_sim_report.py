"""``maestro simulate`` in process: report.json, a self-contained report.html, PNG plots."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from cli.main import cli
from simulator.environment import JourneyEnvironment
from simulator.report import write_report
from simulator.run import build_policy, run_policy
from simulator.session import ope_sizes

PNG = b"\x89PNG\r\n\x1a\n"


def test_write_report_files_and_self_contained_html(small_env: JourneyEnvironment,
                                                    tmp_path: Path) -> None:
    runs = {k: run_policy(build_policy(k, small_env.catalog, 0), small_env, 300, seed=1)
            for k in ("uniform", "rules")}
    ope = {"logging_policy": "uniform", "targets": ["rules"], "seeds": [1, 2],
           "by_size": {"50": {"ips": {"bias": 0.1, "rmse": 0.3, "coverage": 1.0, "runs": 2}},
                       "300": {"ips": {"bias": 0.01, "rmse": 0.1, "coverage": 1.0, "runs": 2},
                               "clipped_ips": {"bias": -0.08, "rmse": 0.1, "coverage": 0.03,
                                               "runs": 2, "biased": 1.0}}}}
    report = write_report(runs, tmp_path, config={"steps": 300}, ope=ope)
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk["policies"].keys() == {"uniform", "rules"}
    assert on_disk["policies"]["rules"]["mean_reward"] == report["policies"]["rules"]["mean_reward"]
    for name in ("cumulative_reward", "regret", "channel_mix", "decision_points", "ope_error"):
        assert (tmp_path / f"{name}.png").read_bytes().startswith(PNG)
        assert on_disk["plots"][name] == f"{name}.png"
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 5
    assert not re.search(r"""(src|href)=['"](https?:|/|[^d'"])""", page)  # nothing external
    assert "cart_abandoned" in page and "ips" in page
    assert "clipped_ips (biased: interval ignores its bias)" in page  # its 3% coverage, labelled


def test_cli_simulate_in_process(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    result = CliRunner().invoke(cli, ["simulate", "--policies", "uniform,rules,vw-cb",
                                      "--customers", "200", "--steps", "600", "--seed", "4",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert set(report["policies"]) == {"uniform", "rules", "vw-cb"}
    for summary in report["policies"].values():
        assert {"mean_reward", "regret", "channel_mix", "by_decision_point"} <= set(summary)
        assert summary["steps"] == 600
    assert set(report["ope"]["by_size"]) == {str(n) for n in ope_sizes(600)}
    assert {"ips", "snips", "dm", "dr"} <= set(report["ope"]["by_size"]["600"])
    assert (out / "ope_error.png").exists() and (out / "report.html").exists()
    assert "\r" not in result.output  # no progress bar when not on a terminal
    assert "report:" in result.output


def test_cli_simulate_refuses_unknown_policy(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["simulate", "--policies", "uniform,bogus",
                                      "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "bogus" in result.output
    assert not (tmp_path / "x").exists()
