"""``/decide`` with the contact policy on, against the same service without it, on uvicorn.

Two servers of the same app in this process (uvicorn, one thread each, in-memory features of
``--customers`` synthetic customers, the cold-start ``rules`` champion), one with the
embedded contact store (``$HOME/contacts.db``) holding ``--history`` contacts per customer
within the last 30 days (outside contacts on random channels) and the shipped catalog's 6
caps, one without a contact stage. Sequential keep-alive requests, alternating blocks of
``--block`` between the two servers so the machine's load hits both alike; p50/p95 per arm
and the difference.

    .venv/bin/python -m benchmarks.bench_contacts [--requests 4000] [--history 20]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np


def start(settings: Any, contacts: bool) -> tuple[Any, Any, str]:
    import socket

    import uvicorn

    from serving.api.app import create_app
    from serving.engines.runner import uvicorn_config
    from serving.factory import build_service, memory_layer_from_synthetic

    service = build_service(settings, memory_layer_from_synthetic(settings_customers(settings)))
    if not contacts:
        service.contacts.store.close()
        service.contacts = None
    app = create_app(service)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port))  # type: ignore[arg-type]
    threading.Thread(target=server.run, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    return server, service, url


_CUSTOMERS = {"n": 1000}


def settings_customers(_settings: Any) -> int:
    return _CUSTOMERS["n"]


def seed_history(service: Any, customers: int, history: int, rng: random.Random) -> None:
    from policies.contact_rules import Contact
    from serving.state.contacts import outside_key

    store = service.contacts.store
    channels = ("email", "push", "sms", "in_app", "whatsapp", "call_center")
    now = time.time()
    for i in range(customers):
        cid = f"c-{i:06d}"
        for _ in range(history):
            c = Contact(now - rng.uniform(60, 30 * 86_400), rng.choice(channels), "outside",
                        "", "marketing")
            store.record(cid, outside_key(cid, c), c)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--history", type=int, default=20)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--block", type=int, default=200)
    args = parser.parse_args()
    _CUSTOMERS["n"] = args.customers
    from serving.settings import Settings

    rng = random.Random(7)
    servers = {}
    with tempfile.TemporaryDirectory() as tmp:
        for arm in ("off", "on"):
            home = Path(tmp) / arm
            settings = Settings(home=home, mlflow_tracking_uri=f"sqlite:///{home / 'm.db'}",
                                feature_source="memory", roll_seconds=3600)
            servers[arm] = start(settings, contacts=arm == "on")
        seed_history(servers["on"][1], args.customers, args.history, rng)
        clients = {arm: httpx.Client(base_url=s[2]) for arm, s in servers.items()}
        times: dict[str, list[float]] = {"off": [], "on": []}
        points = ["default", "cart_abandoned", "churn_risk", "onboarding"]
        for _ in range(30):  # warm-up
            for arm in clients:
                clients[arm].post("/decide", json={"customer_id": "c-000000"})
        done = 0
        while done < args.requests:
            for arm in ("off", "on"):
                for k in range(args.block):
                    body = {"customer_id": f"c-{rng.randrange(args.customers):06d}",
                            "decision_point": points[k % len(points)]}
                    t = time.perf_counter()
                    r = clients[arm].post("/decide", json=body)
                    times[arm].append(time.perf_counter() - t)
                    assert r.status_code == 200, r.text
            done += args.block
        for arm, (server, _service, _) in servers.items():
            server.should_exit = True
            clients[arm].close()
        time.sleep(1.0)
    for arm in ("off", "on"):
        ms = np.array(times[arm]) * 1000
        print(f"contact policy {arm}: n={len(ms)} p50 {np.percentile(ms, 50):.3f} ms, "
              f"p95 {np.percentile(ms, 95):.3f} ms")
    diff = np.percentile(times["on"], 50) - np.percentile(times["off"], 50)
    print(f"p50 difference: {diff * 1000:+.3f} ms")


if __name__ == "__main__":
    main()
