"""The cost of conditions on ``/decide``: ``DecisionService.decide`` in process with 20
condition expressions (10 ``triggers.yaml`` segments, 10 catalog ``when`` rules over
features, the request context and segments) against the same catalog without them.

Reports the deciding thread's CPU µs per decide (median of ``--passes`` alternating
passes over ``--n`` decisions each, in-memory features) and the median paired difference. Run pinned on a quiet
machine for figures to compare (``taskset -c 1``).

    PYTHONPATH=. python -m benchmarks.bench_conditions [--n 3000] [--passes 7]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

ACTIONS = """\
decision_points:
  default:
    actions:
      - {id: no_contact, channel: none}
      - {id: email_offer, channel: email, features: {category: marketing}}
      - {id: push_offer, channel: push, features: {category: marketing}}
      - {id: call_back, channel: call_center, features: {category: retention}}
"""
FEATURES = ["lifetime_value", "tenure_days", "sends_email_7d", "opens_email_30d", "clicks_push_7d"]


def _write_home(home: Path, conditions: bool) -> None:
    text = ACTIONS
    if conditions:
        text += "    rules:\n      when:\n"
        for i in range(10):
            feature = FEATURES[i % len(FEATURES)]
            expr = f"customer.{feature} >= {i}.0 || segment.s{i} || context.page == 'p{i}'"
            text += f'        - {{name: w{i}, if: "{expr}", actions: [call_back]}}\n'
        lines = [
            f'  s{i}: "customer.{FEATURES[i % 5]} > {i * 10}.0 && customer.tenure_days > {i}"'
            for i in range(10)
        ]
        (home / "triggers.yaml").write_text("segments:\n" + "\n".join(lines) + "\n")
    (home / "catalog.yaml").write_text(text)


def _service(home: Path, conditions: bool) -> object:
    """A started service over ``home`` (with or without the 20 conditions)."""
    from serving.factory import build_service, memory_layer_from_synthetic
    from serving.settings import Settings

    home.mkdir()
    _write_home(home, conditions)
    settings = Settings(home=home, feature_source="memory", roll_seconds=3600,
                        poll_seconds=10, mlflow_tracking_uri=f"sqlite:///{home}/m.db")
    service = build_service(settings, memory_layer_from_synthetic(500, 7)).start()
    answers = [service.decide(body) for body in _bodies(200)]
    excluded = sum(b'"condition:' in a for a in answers)
    if conditions != (excluded > 0) or conditions != bool(service.segments):
        raise AssertionError(f"conditions not applied ({excluded} of 200 answers excluded)")
    return service


def _bodies(n: int) -> list[object]:
    from serving.api.fast_decode import decode_decide

    return [
        decode_decide(b'{"customer_id": "c-%06d", "context": {"page": "home"}}' % (i % 500))
        for i in range(n)
    ]


def _pass(service: object, bodies: list[object]) -> float:
    start = time.thread_time()
    for body in bodies:
        service.decide(body)  # type: ignore[attr-defined]
    return (time.thread_time() - start) / len(bodies) * 1e6


def measure(n: int, passes: int) -> tuple[float, float, float]:
    """Median CPU µs per decide without and with the conditions, and the median of the
    per-pass differences (passes alternate, so load hits both alike)."""
    with tempfile.TemporaryDirectory() as tmp:
        plain = _service(Path(tmp) / "plain", False)
        rich = _service(Path(tmp) / "rich", True)
        bodies = _bodies(n)
        try:
            pairs = [(_pass(plain, bodies), _pass(rich, bodies)) for _ in range(passes)]
        finally:
            plain.close()  # type: ignore[attr-defined]
            rich.close()  # type: ignore[attr-defined]
    return (
        statistics.median(p for p, _ in pairs),
        statistics.median(r for _, r in pairs),
        statistics.median(r - p for p, r in pairs),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--passes", type=int, default=9)
    args = parser.parse_args()
    none, some, diff = measure(args.n, args.passes)
    print(f"decide without conditions: {none:.1f} µs CPU; with 20 expressions: {some:.1f} µs; "
          f"median paired difference {diff:+.1f} µs")


if __name__ == "__main__":
    main()
