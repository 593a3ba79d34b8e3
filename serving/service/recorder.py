"""The last stage of a decision: log it, then answer it.

Everything the policy saw is appended to the event log as a
:class:`training.logs.records.DecisionRecord` *before* the answer's bytes exist; an
answer given to a ``request_id`` is remembered (shared by replicas) and replayed
instead of deciding again. An answer remembered by a version that did not say
``customer_known`` is replayed with ``"customer_known": null`` (it was not recorded).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from policies.catalog import DecisionPoint
from policies.types import Action, Decision, Exclusion
from serving.eventlog.log import dumps
from serving.service.ports import DecisionLog
from serving.service.stages import RECORD_MEMO, Choice
from training.logs.records import DecisionRecord

if TYPE_CHECKING:
    from serving.api.fast_decode import DecideBody
    from serving.api.schemas import DecideRequest


def _actions_json(actions: list[Action]) -> list[dict[str, Any]]:
    return [{"id": a.id, "channel": a.channel, "features": dict(a.features)} for a in actions]


#: the answer's ``customer_known`` key, as a replay looks for it
_KNOWN_KEY = b'"customer_known":'


def shadow_probability_of(shadow: Decision | None, action_id: str | None) -> float | None:
    """The shadow's probability of the logged action (None without a shadow; 0 when it
    would never choose it, or nothing was chosen)."""
    if shadow is None:
        return None
    for r in shadow.ranking:
        if r.action_id == action_id:
            return r.probability
    return 0.0


def request_key(req: DecideRequest | DecideBody) -> str:
    """The key a ``request_id`` is remembered under (per customer and decision point)."""
    return f"{req.customer_id}\x1f{req.decision_point}\x1f{req.request_id}"


class DecisionRecorder:
    """Appends each decision to the log and encodes its answer (see the module doc)."""

    def __init__(self, log: DecisionLog) -> None:
        self.log = log
        #: the logged ``actions`` JSON of the catalog's (immutable) eligible subsets
        self.action_lists: dict[tuple[str, ...], str] = {}

    def replay(self, req: DecideRequest | DecideBody) -> bytes | None:
        """The answer already given to the request's ``request_id``, if any."""
        if req.request_id is None:
            return None
        previous = self.log.find_request(request_key(req))
        if previous is None:
            return None
        body = previous.encode()
        if _KNOWN_KEY not in body:  # remembered before answers carried it
            body = body[: body.rindex(b"}")] + b"," + _KNOWN_KEY + b"null}"
        return body

    def record(
        self,
        req: DecideRequest | DecideBody,
        point: DecisionPoint,
        now: float,
        event_id: str,
        customer_json: str,
        known: bool | None,
        eligible: list[Action],
        excluded: list[Exclusion],
        from_catalog: bool,
        choice: Choice,
        segments: list[str] | None = None,
        learned_since: int | None = None,
    ) -> bytes:
        """Log the decision, then return the contract's answer bytes (remembered under the
        request's ``request_id``, if any). ``known``: whether the feature store holds the
        customer (None: it could not be read); ``segments``: the customer's dynamic
        segments (None: none declared); ``learned_since``: online updates of the serving
        model (None: no online learning)."""
        decision, version, variant, shadow, degraded_reason = choice
        action = decision.action
        action_id, channel = (action.id, action.channel) if action else (None, None)
        degraded = degraded_reason is not None
        probs = {r.action_id: r.probability for r in decision.ranking}
        excluded_json = [{"action_id": e.action_id, "reason": e.reason} for e in excluded]
        self.log.append_decision(
            DecisionRecord(
                event_id=event_id,
                request_id=req.request_id,
                timestamp=now,
                customer_id=req.customer_id,
                decision_point=point.name,
                customer_features=customer_json,
                context=dumps(req.context),
                actions=self._logged_actions(point.name, eligible, from_catalog),
                probabilities=dumps([probs.get(a.id, 0.0) for a in eligible]),
                excluded=dumps(excluded_json),
                action_id=action_id,
                channel=channel,
                probability=decision.probability,
                policy=decision.policy,
                policy_version=version,
                variant=variant,
                explored=decision.explored,
                degraded=degraded,
                customer_known=known,
                reward_deadline=now + point.reward_window_seconds,
                shadow_policy=shadow.policy if shadow else None,
                shadow_policy_version=shadow.policy_version if shadow else None,
                shadow_action_id=shadow.action.id if shadow and shadow.action else None,
                shadow_probability=shadow.probability if shadow else None,
                shadow_logged_probability=shadow_probability_of(shadow, action_id),
                anonymous_id=req.anonymous_id,
                segments=segments,
                learned_since=learned_since,
            )
        )
        body = orjson.dumps({  # the contract's answer
            "event_id": event_id, "action_id": action_id, "channel": channel,
            "probability": decision.probability,
            "ranking": [{"action_id": r.action_id, "probability": r.probability}
                        for r in decision.ranking],
            "excluded": excluded_json, "policy": decision.policy,
            "policy_version": version, "degraded": degraded, "customer_known": known,
        })  # fmt: skip
        if req.request_id is not None:
            self.log.remember_request(request_key(req), body.decode())
        return body

    def _logged_actions(self, point: str, eligible: list[Action], from_catalog: bool) -> str:
        """The logged ``actions`` column; for the catalog's actions, memoised per eligible
        subset."""
        if not from_catalog:
            return dumps(_actions_json(eligible))
        key = (point, *[a.id for a in eligible])
        encoded = self.action_lists.get(key)
        if encoded is None:
            encoded = dumps(_actions_json(eligible))
            if len(self.action_lists) < RECORD_MEMO:
                self.action_lists[key] = encoded
        return encoded
