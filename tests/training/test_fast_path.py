"""The bulk training path computes exactly what the row-by-row path computes.

Column-wise shared features (training.columns), bulk VW learning and scoring
(policies.vw.batch), the reward model's prepared features and the memoised
uniform/rules pmfs are compared, bit for bit, with the per-row featurisers,
``VWPolicy.learn`` / ``VWPolicy.pmf`` and ``policy.pmf`` on a small but varied log.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from logs_factory import T0, decision_row
from varied_log import ACTIONS, varied_log

from policies.catalog import load_catalog
from policies.featurize import DenseFeaturizer
from policies.registry import make_policy
from policies.types import Action, Context, LoggedBatch
from policies.vw import batch as vw_batch
from training.columns import SharedFeatures
from training.data import join_logs
from training.reward_model import RidgeRewardModel
from training.train import LoggingPolicy, TrainConfig, batch_pmfs, evaluate_all, train_candidate

CATALOG = load_catalog()


@pytest.fixture(scope="module")
def logged():
    decisions, rewards = varied_log()
    return join_logs(pd.DataFrame(decisions), pd.DataFrame(rewards), CATALOG, now=T0 + 1e7)


def test_join_decodes_the_logged_features(logged) -> None:
    decisions, _ = varied_log()
    by_id = {d["event_id"]: d for d in decisions}
    assert len(logged) == len(decisions)
    for event_id, ctx, acts, pmf in zip(
        logged.frame["event_id"],
        logged.batch.contexts,
        logged.batch.actions,
        logged.logging_pmfs,
        strict=True,
    ):
        row = by_id[event_id]
        assert json.loads(row["customer_features"]) == dict(ctx.customer)
        assert [a.id for a in acts] == [a["id"] for a in json.loads(row["actions"])]
        assert pmf.tolist() == json.loads(row["probabilities"])


def test_join_sums_long_pmfs_as_numpy_does() -> None:
    many = [Action(f"a{i}", "email") for i in range(9)]
    pmf = [1 / 9] * 9
    rows = [
        decision_row(f"e{i}", Context("c", {}, {}, "cart_abandoned", T0), many, pmf, i, T0)
        for i in range(9)
    ]
    ts = join_logs(pd.DataFrame(rows), pd.DataFrame(), CATALOG, now=T0 + 1e7)
    assert len(ts) == 9 and not ts.report.skipped


def test_columnar_dense_features_equal_the_per_row_featuriser(logged) -> None:
    contexts = logged.batch.contexts
    features = SharedFeatures.of(contexts)
    feat = DenseFeaturizer(64, 1)
    expected = np.stack([DenseFeaturizer(64, 1).shared(c) for c in contexts])
    got = features.dense(feat)
    assert got.dtype == expected.dtype and np.array_equal(got, expected)


def test_training_columns_are_what_the_vw_batch_path_reads(logged) -> None:
    """policies.vw.batch reads shared features through its own protocols (it imports
    nothing of training); training's columnar features satisfy them."""
    features = SharedFeatures.of(logged.batch.contexts)
    assert isinstance(features, vw_batch.SharedColumns)
    assert isinstance(features.customer, vw_batch.TokenColumns)
    assert isinstance(features.request, vw_batch.TokenColumns)


@pytest.mark.parametrize("exploration", ["epsilon", "softmax", "squarecb", "bag", "cover"])
def test_bulk_vw_learns_and_scores_like_the_policy(logged, exploration) -> None:
    train, holdout = logged.split(0.3)
    row_by_row = make_policy("vw-cb", exploration=exploration, seed=3)
    bulk = make_policy("vw-cb", exploration=exploration, seed=3)
    row_by_row.learn(train.batch)
    seen: list[int] = []
    vw_batch.learn(bulk, train.batch, SharedFeatures.of(train.batch.contexts), seen.append, 50)
    assert sum(seen) == len(train)
    assert bulk.save() == row_by_row.save()
    got = vw_batch.pmfs(bulk, holdout.batch, SharedFeatures.of(holdout.batch.contexts))
    for ctx, acts, pmf in zip(holdout.batch.contexts, holdout.batch.actions, got, strict=True):
        assert np.array_equal(pmf, row_by_row.pmf(ctx, acts))


def test_bulk_warm_start_continues_like_the_policy(logged) -> None:
    first, second = logged.split(0.5)
    champion = make_policy("vw-cb")
    champion.learn(first.batch)
    cfg = TrainConfig()
    bulk = train_candidate("vw-cb", second.batch, champion, cfg, bulk=True)
    slow = train_candidate("vw-cb", second.batch, champion, cfg, bulk=False)
    assert bulk.save() == slow.save()


def test_bulk_evaluation_equals_row_by_row(logged) -> None:
    train, holdout = logged.split(0.3)
    candidate = train_candidate("vw-cb", train.batch, None, TrainConfig())
    policies = {
        "candidate": candidate,
        "champion": LoggingPolicy(holdout),
        "uniform": make_policy("uniform"),
        "rules": make_policy("rules", priorities=CATALOG.journey_priorities()),
    }
    fast = evaluate_all(policies, holdout, train, 0.05, bulk=True)
    slow = evaluate_all(policies, holdout, train, 0.05, bulk=False)
    assert fast == slow  # every estimate, every field, exactly


def test_batch_pmfs_match_policy_pmf(logged) -> None:
    batch = logged.batch
    for policy in (
        make_policy("uniform"),
        make_policy("rules", priorities={"cart_abandoned": ["sms_reminder"]}),
    ):
        got = batch_pmfs(policy, batch)
        assert got is not None
        for ctx, acts, pmf in zip(batch.contexts, batch.actions, got, strict=True):
            assert np.array_equal(pmf, policy.pmf(ctx, acts))
    assert batch_pmfs(make_policy("linucb"), batch) is None


def test_prepared_reward_model_predicts_the_same(logged) -> None:
    train, holdout = logged.split(0.3)
    plain = RidgeRewardModel().fit(train.batch)
    prepared = RidgeRewardModel().fit(train.batch)
    prepared.prepare(holdout.batch.contexts)
    rows = prepared.predict_rows(holdout.batch.contexts, holdout.batch.actions)
    for ctx, acts, q in zip(holdout.batch.contexts, holdout.batch.actions, rows, strict=True):
        assert np.array_equal(prepared(ctx, acts), plain(ctx, acts))
        assert q.tobytes() == plain(ctx, acts).tobytes()


def test_bulk_learn_refuses_mismatched_features(logged) -> None:
    short = SharedFeatures.of(logged.batch.contexts[:3])
    with pytest.raises(ValueError, match="different lengths"):
        vw_batch.learn(make_policy("vw-cb"), logged.batch, short)
    assert isinstance(logged.batch, LoggedBatch)


def test_memoised_decoding_still_counts_every_bad_row() -> None:
    acts = ACTIONS[:2]
    ok = [
        decision_row(f"e{i}", Context("c", {}, {}, "cart_abandoned", T0), acts, [0.5, 0.5], 0, T0)
        for i in range(2)
    ]
    bad_ctx = [{**row, "event_id": f"b{i}", "context": "{oops"} for i, row in enumerate(ok)]
    nested = [
        {**row, "event_id": f"n{i}", "probabilities": "[[0.5, 0.5]]"} for i, row in enumerate(ok)
    ]
    not_scalar = [{**row, "event_id": f"s{i}", "context": '{"a": [1]}'} for i, row in enumerate(ok)]
    ts = join_logs(
        pd.DataFrame([*ok, *bad_ctx, *nested, *not_scalar]), pd.DataFrame(), CATALOG, now=T0 + 1e7
    )
    assert len(ts) == 2
    assert dict(ts.report.skipped) == {"corrupt_json": 4, "ranking_mismatch": 2}
    # rows logged with the same strings share one decoded pmf and request, values intact
    assert ts.logging_pmfs[0].tolist() == [0.5, 0.5] and ts.batch.contexts[1].request == {}


def test_flat_object_shortcut_agrees_with_the_full_check() -> None:
    from training.logs.reader import _flat_object, _scalars_only

    for text in [
        '{"a": 1, "b": "x"}',
        '{"a": "[not a list]", "b": "{not an object}"}',
        '{"a": [1]}',
        '{"a": {"b": 1}}',
        "[1, 2]",
        '"text"',
        "{}",
    ]:
        decoded = json.loads(text)
        assert _flat_object(decoded, text) == _scalars_only(decoded), text


def test_epoch_seconds_shortcut_equals_total_seconds() -> None:
    from training.data import _ts

    rng = np.random.default_rng(2)
    utc = pd.Series(pd.to_datetime(T0 + rng.uniform(-1e8, 1e8, 500), unit="s", utc=True))
    expected = (utc - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=float)
    for series in (utc, utc.dt.tz_localize(None), utc.dt.tz_convert("Europe/Paris")):
        assert _ts(series).tobytes() == expected.tobytes()
    with_nat = utc.copy()
    with_nat.iloc[7] = pd.NaT
    got = _ts(with_nat)
    assert np.isnan(got[7]) and np.array_equal(np.delete(got, 7), np.delete(expected, 7))


def test_split_rows_are_the_rows_of_the_whole_batch(logged) -> None:
    train, holdout = logged.split(0.3)
    mask = np.arange(len(logged)) % 3 == 0
    some = logged.subset(mask)
    b = logged.batch
    for part, rows in ((train, range(len(train))), (holdout, range(len(train), len(logged)))):
        assert part.batch.contexts == [b.contexts[i] for i in rows]
        assert part.batch.chosen.tolist() == [b.chosen[i] for i in rows]
    assert some.batch.rewards.tolist() == b.rewards[mask].tolist()
    assert [c for c in some.batch.contexts] == [b.contexts[i] for i in np.flatnonzero(mask)]
    assert isinstance(some.batch, LoggedBatch) and len(some.batch) == int(mask.sum())


def test_data_digest_is_the_per_row_digest(logged) -> None:
    import hashlib

    from training.train import digest

    h = hashlib.sha256()
    for event_id, reward in zip(logged.frame["event_id"], logged.frame["reward"], strict=True):
        h.update(f"{event_id}:{reward!r};".encode())
    assert digest(logged) == h.hexdigest()
