"""A Maestro policy as an MLflow pyfunc model: the policy travels as its own saved bytes.

The model's only artifact is ``policy`` — the exact bytes of
:meth:`policies.base.BasePolicy.save` — and :meth:`PolicyModel.load_context` rebuilds the
policy from them with :func:`policies.registry.load_policy`. Nothing of the policy is
pickled; the wrapper class itself is referenced by import path.

``predict`` takes a DataFrame with one row per decision and the columns
``customer_id``, ``decision_point``, ``customer`` (features), ``context`` and ``actions``
(``[{id, channel, features}]``), each either a Python object or a JSON string, and returns
the policy's pmf over that row's actions (a list of floats per row).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow.pyfunc

from policies.registry import load_policy
from policies.types import Action, Context

POLICY_ARTIFACT = "policy"
POLICY_FILE = "policy.bin"


def _obj(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


class PolicyModel(mlflow.pyfunc.PythonModel):
    """Pyfunc wrapper around a policy's saved bytes."""

    def load_context(self, context: Any) -> None:
        self.policy = load_policy(Path(context.artifacts[POLICY_ARTIFACT]).read_bytes())

    # no type hints here on purpose: MLflow derives a (wrong) input schema from them
    def predict(self, context, model_input, params=None):
        out: list[list[float]] = []
        for row in model_input.to_dict(orient="records"):
            ctx = Context(
                customer_id=str(row.get("customer_id", "")),
                customer=_obj(row.get("customer") or {}),
                request=_obj(row.get("context") or {}),
                decision_point=str(row.get("decision_point", "default")),
            )
            actions = [
                Action(a["id"], a["channel"], a.get("features") or {}) for a in _obj(row["actions"])
            ]
            out.append([float(p) for p in self.policy.pmf(ctx, actions)])
        return out
