"""A two-node Ray cluster on one machine for the cluster tests: a head and a worker node,
each its own raylet and object store (``ray.cluster_utils.Cluster``), under a short
private temporary directory (Ray's socket paths must stay under 107 bytes). Started once
per session (``tests/conftest.py``'s ``ray_two_nodes``), shut down at its end."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass
class TwoNodes:
    cluster: Any
    temp_dir: str

    @property
    def address(self) -> str:
        return self.cluster.address

    @property
    def node_ids(self) -> tuple[str, str]:
        """(head, worker) node ids, as Ray's actor table names them."""
        (worker,) = self.cluster.worker_nodes
        return self.cluster.head_node.node_id, worker.node_id

    def actors(self, class_name: str) -> list[dict[str, Any]]:
        """The live actors of ``class_name`` (each with its ``Pid`` and ``Address.NodeID``)."""
        table = self.cluster.global_state.actor_table(None)
        return [
            a for a in table.values()
            if a["ActorClassName"] == class_name and a["State"] == "ALIVE"
        ]

    def kill_worker(self) -> None:
        """SIGKILL the worker node: its raylet, object store and every worker on it."""
        (worker,) = self.cluster.worker_nodes
        self.cluster.remove_node(worker, allow_graceful=False)

    def add_worker(self) -> None:
        """Start a worker node again (the restarted machine), with the nodes' environment."""
        with _node_env():
            self.cluster.add_node(num_cpus=2)
            self.cluster.wait_for_nodes()

    def stop(self) -> None:
        self.cluster.shutdown()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


#: the environment the nodes start with: the head's proxy routes to replicas on both nodes
#: (Serve's default prefers the proxy's own node, so one proxy would feed one replica)
NODE_ENV = {"RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING": "0", "RAY_USAGE_STATS_ENABLED": "0"}


@contextlib.contextmanager
def _node_env() -> Iterator[None]:
    """:data:`NODE_ENV` set while nodes start (they inherit this process's environment)."""
    saved = {name: os.environ.get(name) for name in NODE_ENV}
    os.environ.update(NODE_ENV)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def start_two_nodes() -> TwoNodes:
    from ray.cluster_utils import Cluster

    temp_dir = tempfile.mkdtemp(prefix="mrc-")
    with _node_env():
        cluster = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": 2, "temp_dir": temp_dir, "include_dashboard": False},
        )
        cluster.add_node(num_cpus=2)
        cluster.wait_for_nodes()
    return TwoNodes(cluster, temp_dir)
