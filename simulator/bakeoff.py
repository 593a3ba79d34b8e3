"""A supervised-to-bandit bake-off on scikit-learn's bundled datasets.

Each labelled example becomes one contextual-bandit round (Bietti, Agarwal &
Langford's protocol): the features are the context, the ``K`` classes are the
actions, the policy picks a class and sees only whether it was right
(reward 1, loss 0) or wrong (reward 0, loss 1). One pass over a seeded shuffle;
the **progressive validation loss** is the mean loss of each decision made
*before* learning from that example (Blum, Kalai & Langford, COLT 1999). A
supervised online learner that sees every label (multinomial logistic regression
by SGD), scored the same way, is the baseline a bandit learner
approaches from above.

Run ``python -m simulator.bakeoff --out DIR`` for ``bakeoff.json`` and ``bakeoff.png``.

References:
    Bietti, Agarwal & Langford, *A Contextual Bandit Bake-off*, JMLR 22 (2021).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from policies.draw import seed_from_event_id
from policies.registry import make_policy
from policies.types import Action, Context, LoggedBatch
from simulator.errors import InvalidSimulationConfig

DATASETS = ("digits", "iris", "wine", "breast_cancer")


@dataclass(frozen=True)
class Setting:
    """One policy kind with one exploration setting."""

    kind: str
    label: str
    params: dict[str, Any] = field(default_factory=dict)


#: vw-cb's five explorations (Bietti et al.'s contenders), LinUCB, the neural bandit, uniform
DEFAULT_SETTINGS: tuple[Setting, ...] = (
    Setting("vw-cb", "epsilon=0.02", {"exploration": "epsilon", "epsilon": 0.02}),
    Setting("vw-cb", "epsilon=0.1", {"exploration": "epsilon", "epsilon": 0.1}),
    Setting("vw-cb", "softmax lambda=10", {"exploration": "softmax", "softmax_lambda": 10.0}),
    Setting("vw-cb", "squarecb gamma=10", {"exploration": "squarecb",
                                           "squarecb_gamma_scale": 10.0}),
    Setting("vw-cb", "bag=4", {"exploration": "bag", "bag_size": 4, "epsilon": 0.05}),
    Setting("vw-cb", "cover=4", {"exploration": "cover", "cover_size": 4, "epsilon": 0.05}),
    Setting("linucb", "alpha=0.5", {"alpha": 0.5}),
    Setting("neural", "8 heads", {}),
    Setting("uniform", "-", {}),
)


@dataclass(frozen=True)
class BakeoffRow:
    dataset: str
    kind: str
    setting: str
    seed: int
    n: int
    loss: float
    seconds: float


def load(name: str, limit: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features scaled to [0, 1] per column and integer labels, shuffled with ``seed``."""
    from sklearn import datasets

    loaders = {"digits": datasets.load_digits, "iris": datasets.load_iris,
               "wine": datasets.load_wine, "breast_cancer": datasets.load_breast_cancer}
    if name not in loaders:
        raise InvalidSimulationConfig(f"unknown dataset {name!r}; choose from {DATASETS}")
    x, y = loaders[name](return_X_y=True)
    span = x.max(axis=0) - x.min(axis=0)
    x = (x - x.min(axis=0)) / np.where(span > 0, span, 1.0)
    order = np.random.default_rng(seed).permutation(len(y))
    if limit is not None:
        order = order[:limit]
    return x[order], y[order].astype(int)


def _contexts(x: np.ndarray, name: str) -> list[Context]:
    return [Context(f"{name}-{i}", {f"f{j}": round(float(v), 4) for j, v in enumerate(row) if v},
                    {}, name, 0.0) for i, row in enumerate(x)]


def _actions(k: int) -> tuple[Action, ...]:
    return tuple(Action(f"class_{c}", "in_app", {"label": str(c)}) for c in range(k))


def progressive_loss(setting: Setting, x: np.ndarray, y: np.ndarray, name: str,
                     seed: int = 0) -> tuple[float, float]:
    """(progressive validation loss, seconds) of one bandit setting over one pass."""
    policy = make_policy(setting.kind, seed=seed, **setting.params)
    actions = _actions(int(y.max()) + 1)
    losses = np.empty(len(y))
    start = time.perf_counter()
    for i, ctx in enumerate(_contexts(x, name)):
        decision = policy.decide(ctx, actions, seed_from_event_id(f"{name}-{seed}-{i}"))
        assert decision.action is not None
        chosen = actions.index(decision.action)
        reward = 1.0 if chosen == y[i] else 0.0
        losses[i] = 1.0 - reward
        policy.learn(LoggedBatch([ctx], [actions], np.array([chosen]),
                                 np.array([decision.probability]), np.array([reward])))
    return float(losses.mean()), time.perf_counter() - start


def supervised_loss(x: np.ndarray, y: np.ndarray, seed: int = 0,
                    learning_rate: float = 2.0) -> tuple[float, float]:
    """Progressive validation loss of online multinomial logistic regression that sees
    every label (plain SGD with a 1/sqrt(t) step, in NumPy: sklearn's per-call
    ``partial_fit`` overhead would dominate on one example at a time)."""
    k = int(y.max()) + 1
    d = x.shape[1] + 1
    w = np.zeros((k, d))
    losses = np.empty(len(y))
    start = time.perf_counter()
    for i in range(len(y)):
        xi = np.append(x[i], 1.0)
        scores = w @ xi
        losses[i] = float(int(np.argmax(scores)) != y[i]) if i else 1.0
        p = np.exp(scores - scores.max())
        p /= p.sum()
        p[y[i]] -= 1.0
        w -= learning_rate / np.sqrt(i + 1.0) * np.outer(p, xi)
    return float(losses.mean()), time.perf_counter() - start


def run_bakeoff(
    datasets: Sequence[str] = ("digits",),
    settings: Sequence[Setting] = DEFAULT_SETTINGS,
    seeds: Sequence[int] = (0,),
    limit: int | None = None,
) -> list[BakeoffRow]:
    """Every setting, plus the ``supervised`` baseline, on every dataset and seed."""
    rows: list[BakeoffRow] = []
    for name in datasets:
        for seed in seeds:
            x, y = load(name, limit, seed)
            loss, secs = supervised_loss(x, y, seed)
            rows.append(BakeoffRow(name, "supervised", "logistic SGD, full labels", seed,
                                   len(y), loss, secs))
            for s in settings:
                loss, secs = progressive_loss(s, x, y, name, seed)
                rows.append(BakeoffRow(name, s.kind, s.label, seed, len(y), loss, secs))
    return rows


def summarise(rows: Sequence[BakeoffRow]) -> list[dict[str, Any]]:
    """Mean loss over seeds per (dataset, kind, setting)."""
    keys = list(dict.fromkeys((r.dataset, r.kind, r.setting) for r in rows))
    out = []
    for d, k, s in keys:
        sel = [r for r in rows if (r.dataset, r.kind, r.setting) == (d, k, s)]
        out.append({"dataset": d, "kind": k, "setting": s, "n": sel[0].n, "seeds": len(sel),
                    "loss": float(np.mean([r.loss for r in sel])),
                    "seconds": float(np.mean([r.seconds for r in sel]))})
    return out


def plot(summary: Sequence[dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(r["dataset"] for r in summary))
    fig, axes = plt.subplots(len(datasets), 1, figsize=(8, 0.35 * len(summary) + 1.5),
                             squeeze=False)
    for ax, d in zip(axes[:, 0], datasets, strict=True):
        sel = [r for r in summary if r["dataset"] == d]
        labels = [f"{r['kind']} ({r['setting']})" for r in sel]
        colors = ["tab:green" if r["kind"] == "supervised" else
                  "tab:gray" if r["kind"] == "uniform" else "tab:blue" for r in sel]
        ax.barh(labels, [r["loss"] for r in sel], color=colors)
        ax.invert_yaxis()
        ax.set_xlabel("progressive validation loss (error rate)")
        ax.set_title(f"Supervised-to-bandit bake-off: {d}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="digits")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out", default="bakeoff")
    args = parser.parse_args(argv)
    rows = run_bakeoff(args.datasets.split(","), seeds=range(args.seeds), limit=args.limit)
    summary = summarise(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bakeoff.json").write_text(json.dumps(
        {"summary": summary, "rows": [asdict(r) for r in rows]}, indent=2))
    plot(summary, out / "bakeoff.png")
    for r in summary:
        print(f"{r['dataset']:8} {r['kind']:10} {r['setting']:28} loss {r['loss']:.3f}"
              f"  ({r['seconds']:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
