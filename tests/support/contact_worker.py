"""One OS process deciding through the real contact stage (history read, caps, the policy's
draw, the atomic commit) against a shared contact store, for the concurrency tests.

``python contact_worker.py SPEC_JSON`` with ``{"store": "sqlite"|"redis", "path"|"url",
"prefix", "catalog", "customer", "n", "pause", "budget_points", "budget_n", "start_at", "worker"}``;
prints one JSON line: the contacting answers it gave and, per budget point, how many
answers took the budgeted action.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(spec: dict) -> dict:
    from policies.catalog import load_catalog
    from policies.draw import decide_among, seed_from_event_id
    from policies.registry import make_policy
    from policies.types import Context
    from serving.service.contacts import ContactStage
    from serving.service.ids import EventIdSigner

    if spec["store"] == "sqlite":
        from serving.state.contacts_sqlite import SQLiteContactStore

        store = SQLiteContactStore(Path(spec["path"]))
    else:
        from serving.state.contacts_redis import RedisContactStore

        store = RedisContactStore(spec["url"], prefix=spec["prefix"])
    catalog = load_catalog(spec["catalog"])
    signer = EventIdSigner(b"concurrency-test-key")
    stage = ContactStage(store, catalog, signer)
    policy = make_policy("uniform", seed=spec["worker"])
    customer = {f"consent_{c}": True for c in ("email", "push", "sms", "in_app")}

    def one(customer_id: str, point_name: str) -> str | None:
        point = catalog[point_name]
        now = time.time()
        context = Context(customer_id, customer, {}, point.name, now)
        eligible, excluded = point.rules.split(context, point.actions)
        event_id = signer.issue(now + point.reward_window_seconds)
        seed = seed_from_event_id(event_id)

        def choose(elig, excl):  # type: ignore[no-untyped-def]
            decision = decide_among(policy, context, elig, excl, seed, event_id)
            assert not {e.action_id for e in excl} & {a.id for a in elig}
            return (decision,)

        (decision,), _, _ = stage.decide(
            customer_id, point, now, eligible, excluded, event_id, choose
        )
        return None if decision.action is None else decision.action.id

    while time.time() < spec["start_at"]:
        time.sleep(0.005)
    answers = []
    for _ in range(spec["n"]):
        answers.append(one(spec["customer"], "capped"))
        time.sleep(spec["pause"])
    budgeted = {}
    for name in spec["budget_points"]:
        got = [one(f"c-{spec['worker']}-{i}", name) for i in range(spec["budget_n"])]
        budgeted[name] = sum(1 for a in got if a is not None and a != "no_contact")
    store.close()
    contacts = [a for a in answers if a is not None and a != "no_contact"]
    return {"contacts": contacts, "budgeted": budgeted}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
