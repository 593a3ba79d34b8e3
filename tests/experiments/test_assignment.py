"""Variant assignment: deterministic, at the configured shares, sticky when shares change."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from policies.catalog import load_catalog
from serving.experiments.variants import (
    AssignmentTable,
    ExperimentConfigError,
    Experiments,
    parse_experiments,
    pick,
    unit_hash,
)

N = 100_000


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(None)


def _experiments(catalog, tmp_path: Path, config: dict, db: str = "exp.db") -> Experiments:
    return Experiments(parse_experiments(config, catalog), catalog, AssignmentTable(tmp_path / db))


CONFIG = {
    "salt": "s1",
    "holdout": 0.05,
    "decision_points": {
        "cart_abandoned": {
            "variants": {"champion": 0.7, "rules": 0.2, "other": {"share": 0.1, "policy": "rules"}}
        }
    },
}


def _within(count: int, n: int, p: float, z: float = 4.5) -> bool:
    """|count − np| within z binomial standard deviations (a false alarm ~1e-5)."""
    return abs(count - n * p) <= z * math.sqrt(n * p * (1 - p))


def test_hash_is_uniform_deterministic_and_independent_across_scopes() -> None:
    ids = [f"c-{i:06d}" for i in range(N)]
    u = [unit_hash("s", "cart_abandoned", c) for c in ids]
    assert u == [unit_hash("s", "cart_abandoned", c) for c in ids]
    assert all(0.0 <= x < 1.0 for x in u)
    deciles = [0] * 10
    for x in u:
        deciles[int(x * 10)] += 1
    assert all(_within(d, N, 0.1) for d in deciles), deciles
    # another scope (or salt) is an independent draw: joint low/low frequency ~ 0.25
    v = [unit_hash("s", "holdout", c) for c in ids]
    both = sum(1 for a, b in zip(u, v, strict=True) if a < 0.5 and b < 0.5)
    assert _within(both, N, 0.25)
    w = [unit_hash("other-salt", "cart_abandoned", c) for c in ids]
    assert sum(1 for a, b in zip(u, w, strict=True) if a < 0.5 and b < 0.5) != N // 2


def test_shares_over_100k_customers_and_stable(catalog, tmp_path: Path) -> None:
    exp = _experiments(catalog, tmp_path, CONFIG)
    ids = [f"c-{i:06d}" for i in range(N)]
    first = [exp.variant_of(c, "cart_abandoned") for c in ids]
    counts = {v: first.count(v) for v in set(first)}
    assert set(counts) == {"holdout", "champion", "rules", "other"}
    assert _within(counts["holdout"], N, 0.05)
    assert _within(counts["champion"], N, 0.95 * 0.7)
    assert _within(counts["rules"], N, 0.95 * 0.2)
    assert _within(counts["other"], N, 0.95 * 0.1)
    # the holdout is global: the same customers at every decision point with a no_contact
    onboarding = [exp.variant_of(c, "onboarding") for c in ids]
    assert {c for c, v in zip(ids, onboarding, strict=True) if v == "holdout"} == {
        c for c, v in zip(ids, first, strict=True) if v == "holdout"
    }
    assert set(onboarding) == {"holdout", "champion"}  # no experiment there: champion
    # agent routing has no no_contact action: exempt from the holdout
    assert {exp.variant_of(c, "agent_routing") for c in ids[:2000]} == {"champion"}
    # a fresh process (new table object, cold cache) reads the same answers
    exp.close()
    again = _experiments(catalog, tmp_path, CONFIG)
    assert [again.variant_of(c, "cart_abandoned") for c in ids[:20_000]] == first[:20_000]


def test_changing_shares_moves_nobody_already_assigned(catalog, tmp_path: Path) -> None:
    old_ids = [f"c-{i:06d}" for i in range(20_000)]
    new_ids = [f"n-{i:06d}" for i in range(20_000)]
    exp = _experiments(catalog, tmp_path, CONFIG)
    before = {c: exp.variant_of(c, "cart_abandoned") for c in old_ids}
    exp.close()
    changed = {
        **CONFIG,
        "holdout": 0.10,
        "decision_points": {"cart_abandoned": {"variants": {"champion": 0.2, "rules": 0.8}}},
    }
    exp2 = _experiments(catalog, tmp_path, changed)
    after = {c: exp2.variant_of(c, "cart_abandoned") for c in old_ids}
    assert after == before  # including the 'other' arm that no longer exists
    # newcomers follow the new shares
    fresh = [exp2.variant_of(c, "cart_abandoned") for c in new_ids]
    assert "other" not in fresh
    assert _within(fresh.count("holdout"), len(new_ids), 0.10)
    assert _within(fresh.count("rules"), len(new_ids), 0.9 * 0.8)
    # a removed variant keeps its name in the logs but is served by the champion
    gone = next(c for c, v in before.items() if v == "other")
    arm = exp2.assign(gone, "cart_abandoned")
    assert arm.name == "other" and arm.loaded is None
    exp2.close()
    # asked to re-randomise: a new salt is a fresh assignment
    exp3 = _experiments(catalog, tmp_path, {**changed, "salt": "s2"})
    moved = sum(exp3.variant_of(c, "cart_abandoned") != before[c] for c in old_ids)
    assert moved > len(old_ids) * 0.5


def test_without_a_table_assignment_is_the_pure_hash(catalog) -> None:
    config = parse_experiments(CONFIG, catalog)
    exp = Experiments(config, catalog, AssignmentTable(None))
    for i in range(500):
        cid = f"c-{i}"
        expected = (
            "holdout"
            if unit_hash("s1", "holdout", cid) < 0.05
            else pick(unit_hash("s1", "cart_abandoned", cid), config.arms("cart_abandoned"))
        )
        assert exp.variant_of(cid, "cart_abandoned") == expected


def test_erase_forgets_a_customer(catalog, tmp_path: Path) -> None:
    exp = _experiments(catalog, tmp_path, CONFIG)
    exp.variant_of("c-1", "cart_abandoned")
    exp.variant_of("c-1", "onboarding")
    assert exp.table.erase("c-1") == 2  # holdout scope + cart_abandoned scope
    assert exp.table.erase("c-1") == 0


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"holdout": 1.5}, "holdout"),
        ({"decision_points": {"nope": {"variants": {"champion": 1}}}}, "nope"),
        ({"decision_points": {"default": {"variants": {}}}}, "default"),
        ({"decision_points": {"default": {"variants": {"champion": -1}}}}, "experiments"),
        ({"decision_points": {"default": {"variants": {"holdout": 0.5}}}}, "experiments"),
        ({"decision_points": {"default": {"variants": {"x": 0.5}}}}, "experiments"),
        ({"decision_points": {"default": {"variants": {"champion": 0}}}}, "default"),
        ({"typo": 1}, "experiments"),
    ],
)
def test_bad_config_is_a_specific_error(catalog, config: dict, field: str) -> None:
    with pytest.raises(ExperimentConfigError) as info:
        parse_experiments(config, catalog)
    assert info.value.field == field
    assert info.value.http_status == 422


def test_erase_assignments_offline(catalog, tmp_path: Path) -> None:
    from serving.experiments.assignments import erase_assignments

    assert erase_assignments(tmp_path, "c-1") == 0  # no table: nothing to do
    exp = Experiments(parse_experiments(CONFIG, catalog), catalog,
                      AssignmentTable(tmp_path / "experiments.db"))
    exp.variant_of("c-1", "cart_abandoned")
    exp.close()
    assert erase_assignments(tmp_path, "c-1") == 2


def test_two_replicas_converge_on_the_first_written_assignment(tmp_path: Path) -> None:
    """Replicas with different configs (a rollout in progress) propose different variants
    for the same new customer: the first flush wins and the other adopts it."""
    a = AssignmentTable(tmp_path / "shared.db", flush_seconds=60)
    b = AssignmentTable(tmp_path / "shared.db", flush_seconds=60)
    assert a.get_or_set("s:dp", "c-9", "champion") == "champion"
    assert b.get_or_set("s:dp", "c-9", "rules") == "rules"  # not written by anyone yet
    assert a.flush() == 1
    assert b.flush() == 0  # lost the race ...
    assert b.get_or_set("s:dp", "c-9", "rules") == "champion"  # ... and adopted the winner
    fresh = AssignmentTable(tmp_path / "shared.db")
    assert fresh.get_or_set("s:dp", "c-9", "rules") == "champion"
    for t in (a, b, fresh):
        t.close()
