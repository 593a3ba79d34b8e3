"""The one explicit registry of policy kinds, by the contract's names.

Implementations are imported lazily so ``import policies`` and ``maestro --help``
stay fast (torch and VW load only when their policy is built).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from policies.base import BasePolicy, unpack
from policies.errors import InvalidParameterError, UnknownPolicyError

#: kind → "module:Class": the kinds every command takes (the outside contract's names)
POLICY_KINDS: dict[str, str] = {
    "uniform": "policies.baselines:UniformPolicy",
    "rules": "policies.baselines:RulesPolicy",
    "linucb": "policies.baselines:LinUCBPolicy",
    "vw-cb": "policies.vw.policy:VWPolicy",
    "neural": "policies.neural:NeuralPolicy",
}
#: kinds for agent routing only (the routing simulator's baselines), not offered by the commands
ROUTING_KINDS: dict[str, str] = {
    "least-busy": "policies.routing:LeastBusyPolicy",
}
#: every registered kind → "module:Class"
REGISTERED_KINDS: dict[str, str] = {**POLICY_KINDS, **ROUTING_KINDS}


def policy_class(kind: str) -> type[BasePolicy]:
    """The class implementing ``kind``; :class:`UnknownPolicyError` for an unknown name."""
    try:
        target = REGISTERED_KINDS[kind]
    except KeyError:
        raise UnknownPolicyError(
            f"unknown policy kind {kind!r}; choose one of {', '.join(REGISTERED_KINDS)}"
        ) from None
    module, name = target.split(":")
    return getattr(import_module(module), name)


def make_policy(kind: str, **params: Any) -> BasePolicy:
    """A new policy of ``kind`` with hyperparameters ``params`` (checked by the class)."""
    cls = policy_class(kind)
    try:
        return cls(**params)
    except TypeError as exc:
        raise InvalidParameterError(f"{kind}: {exc}") from exc


def load_policy(data: bytes) -> BasePolicy:
    """Rebuild a policy from :meth:`BasePolicy.save` bytes, whatever its kind."""
    kind, _, _ = unpack(data)
    return policy_class(kind).load(data)
