"""The simulation report: ``report.json``, PNG plots and a self-contained ``report.html``.

Plots (matplotlib, Agg backend): cumulative reward and cumulative regret per
policy, the channel mix over time per policy, the per-decision-point table and,
when off-policy evaluation was checked, each estimator's error (RMSE and bias).
The HTML page embeds the PNGs as base64, so it is one file that opens anywhere.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from simulator.run import RunLog

PLOTS = ("cumulative_reward", "regret", "channel_mix", "decision_points", "ope_error")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _thin(y: np.ndarray, points: int = 2_000) -> tuple[np.ndarray, np.ndarray]:
    """At most ``points`` (x, y) pairs of a long curve: plots stay small."""
    n = len(y)
    x = np.arange(1, n + 1)
    if n <= points:
        return x, y
    idx = np.linspace(0, n - 1, points).astype(int)
    return x[idx], y[idx]


def plot_curves(runs: Mapping[str, RunLog], path: Path, which: str) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for kind, log in runs.items():
        series = np.cumsum(log.rewards if which == "cumulative_reward" else log.regret)
        ax.plot(*_thin(series), label=kind)
    ax.set_xlabel("step")
    ax.set_ylabel("cumulative reward" if which == "cumulative_reward" else "cumulative regret")
    ax.set_title("Cumulative reward" if which == "cumulative_reward"
                 else "Cumulative regret (vs best eligible action, true expected rewards)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_channel_mix(runs: Mapping[str, RunLog], path: Path, windows: int = 20) -> Path:
    plt = _pyplot()
    n = len(runs)
    cols = min(n, 3)
    nrows = -(-n // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols + 1.5, 3.4 * nrows),
                             sharey=True, squeeze=False)
    channels = sorted({ch for log in runs.values() for ch in set(log.channels.tolist())})
    colors = {ch: plt.cm.tab10(i % 10) for i, ch in enumerate(channels)}
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, (kind, log) in zip(axes.flat, runs.items(), strict=False):
        ends, mix = log.channel_mix(windows)
        ax.stackplot(ends, [mix.get(ch, np.zeros(len(ends))) for ch in channels],
                     labels=channels, colors=[colors[c] for c in channels])
        ax.set_title(kind)
        ax.set_xlabel("step")
        ax.set_ylim(0, 1)
    for row in axes:
        row[0].set_ylabel("share of decisions")
    axes[0][cols - 1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.suptitle("Channel mix over time")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def decision_point_rows(summaries: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    """Rows ``[decision point, policy, n, mean reward, mean regret, optimal rate]``."""
    rows: list[list[str]] = []
    points = sorted({dp for s in summaries.values() for dp in s["by_decision_point"]})
    for dp in points:
        for kind, s in summaries.items():
            d = s["by_decision_point"].get(dp)
            if d:
                rows.append([dp, kind, str(d["n"]), f"{d['mean_reward']:.3f}",
                             f"{d['mean_regret']:.3f}", f"{d['optimal_rate']:.1%}"])
    return rows


_DP_HEADER = ["decision point", "policy", "n", "mean reward", "mean regret", "optimal"]


def plot_table(rows: list[list[str]], path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 0.35 * (len(rows) + 2)))
    ax.axis("off")
    table = ax.table(cellText=rows or [["-"] * 6], colLabels=_DP_HEADER, loc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    ax.set_title("Per decision point")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_ope(ope: Mapping[str, Mapping[str, Mapping[str, float]]], path: Path) -> Path:
    """Grouped bars: RMSE (solid) and |bias| (hatched) per estimator, one group per data size."""
    plt = _pyplot()
    sizes = list(ope)
    names = list(next(iter(ope.values())))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / max(len(sizes), 1)
    x = np.arange(len(names))
    for j, n in enumerate(sizes):
        rmse = [ope[n][k]["rmse"] for k in names]
        bias = [abs(ope[n][k]["bias"]) for k in names]
        ax.bar(x + j * width, rmse, width, label=f"RMSE, n={n}")
        ax.bar(x + j * width, bias, width * 0.5, hatch="//", fill=False, label=f"|bias|, n={n}")
    ax.set_xticks(x + width * (len(sizes) - 1) / 2, names)
    ax.set_ylabel("error vs true policy value")
    ax.set_title("Off-policy estimators: error against the simulator's truth")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: Mapping[str, Any], images: Mapping[str, Path]) -> str:
    """One self-contained page: summary table, per-decision-point table, embedded plots."""
    pol = report["policies"]
    summary_rows = [[k, str(s["steps"]), f"{s['mean_reward']:.4f}", f"{s['regret']:.1f}",
                     f"{s['mean_regret']:.4f}", f"{s['final_mean_regret']:.4f}",
                     f"{s['optimal_rate']:.1%}"] for k, s in pol.items()]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Maestro simulation</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:"
        "collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "img{max-width:100%}</style></head><body>",
        "<h1>Maestro journey simulation</h1>",
        f"<p>{html.escape(json.dumps(report.get('config', {})))}</p>",
        "<h2>Policies</h2>",
        _html_table(["policy", "steps", "mean reward", "cumulative regret", "mean regret",
                     "final mean regret", "optimal"], summary_rows),
        "<h2>Per decision point</h2>",
        _html_table(_DP_HEADER, decision_point_rows(pol)),
    ]
    ope = report.get("ope")
    if ope:
        rows = [[n, k + (" (biased: interval ignores its bias)" if v.get("biased") else "")
                 + (f" ({v['not_estimable']} runs not estimable)" if v.get("not_estimable")
                    else ""),
                 _finite(v["bias"], "{:+.4f}"), _finite(v["rmse"], "{:.4f}"),
                 _finite(v["coverage"], "{:.0%}")]
                for n, by in ope["by_size"].items() for k, v in by.items()]
        parts += ["<h2>Off-policy evaluation against the truth</h2>",
                  f"<p>logging policy: {html.escape(str(ope['logging_policy']))}; targets: "
                  f"{html.escape(', '.join(ope['targets']))}; seeds: {ope['seeds']}</p>",
                  _html_table(["n", "estimator", "bias", "RMSE", "CI coverage"], rows)]
    for name, path in images.items():
        data = base64.b64encode(path.read_bytes()).decode()
        parts.append(f"<h2>{html.escape(name.replace('_', ' '))}</h2>"
                     f"<img alt='{html.escape(name)}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _finite(value: float, fmt: str) -> str:
    """``fmt`` of ``value``, or ``n/a`` when it is not a finite number (no estimate)."""
    return fmt.format(value) if math.isfinite(value) else "n/a"


def write_report(
    runs: Mapping[str, RunLog],
    out_dir: str | Path,
    config: Mapping[str, Any] | None = None,
    ope: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``report.json``, the PNG plots and ``report.html`` under ``out_dir``.

    ``ope`` (optional): ``{"logging_policy", "targets", "seeds", "by_size": {n: {estimator:
    {"bias", "rmse", "coverage"}}}}``. Returns the report as written to JSON.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summaries = {kind: log.summary() for kind, log in runs.items()}
    images: dict[str, Path] = {
        "cumulative_reward": plot_curves(runs, out / "cumulative_reward.png", "cumulative_reward"),
        "regret": plot_curves(runs, out / "regret.png", "regret"),
        "channel_mix": plot_channel_mix(runs, out / "channel_mix.png"),
        "decision_points": plot_table(decision_point_rows(summaries), out / "decision_points.png"),
    }
    if ope:
        images["ope_error"] = plot_ope(ope["by_size"], out / "ope_error.png")
    report: dict[str, Any] = {
        "policies": summaries,
        "config": dict(config or {}),
        "ope": dict(ope) if ope else None,
        "plots": {k: p.name for k, p in images.items()},
    }
    (out / "report.json").write_text(json.dumps(report, indent=2, default=_json_default))
    (out / "report.html").write_text(render_html(report, images), encoding="utf-8")
    return report


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
