"""Training asks the policy for bulk learning (``policies.bulk.BulkLearner``), never its
kind: a policy that provides the hook learns and scores through it, any other row by row."""

from __future__ import annotations

import pandas as pd
import pytest
from logs_factory import T0
from varied_log import varied_log

from policies.bulk import BulkLearner
from policies.catalog import load_catalog
from policies.registry import REGISTERED_KINDS, make_policy
from policies.vw.policy import VWPolicy
from training.data import join_logs
from training.train import TrainConfig, batch_pmfs, train_candidate


@pytest.fixture(scope="module")
def logged():
    decisions, rewards = varied_log(120, seed=3)
    return join_logs(pd.DataFrame(decisions), pd.DataFrame(rewards), load_catalog(), now=T0 + 1e7)


def test_only_vw_provides_the_bulk_hook() -> None:
    bulk = {kind for kind in REGISTERED_KINDS if isinstance(make_policy(kind), BulkLearner)}
    assert bulk == {"vw-cb"}


def test_training_learns_and_scores_through_the_hook(logged, monkeypatch) -> None:
    calls: list[str] = []
    learn_logged, pmf_logged = VWPolicy.learn_logged, VWPolicy.pmf_logged

    def spy_learn(self, *args, **kwargs):
        calls.append("learn")
        return learn_logged(self, *args, **kwargs)

    def spy_pmf(self, *args, **kwargs):
        calls.append("pmf")
        return pmf_logged(self, *args, **kwargs)

    monkeypatch.setattr(VWPolicy, "learn_logged", spy_learn)
    monkeypatch.setattr(VWPolicy, "pmf_logged", spy_pmf)
    seen: list[int] = []
    bulk = train_candidate("vw-cb", logged.batch, None, TrainConfig(), seen.append, chunk=50)
    assert calls == ["learn"] and sum(seen) == len(logged.batch)
    slow = train_candidate("vw-cb", logged.batch, None, TrainConfig(), bulk=False)
    assert calls == ["learn"] and bulk.save() == slow.save()
    pmfs = batch_pmfs(bulk, logged.batch)
    assert calls == ["learn", "pmf"] and len(pmfs) == len(logged.batch)
    assert batch_pmfs(make_policy("linucb"), logged.batch) is None  # no hook: row by row
