"""What ``/openapi.json`` says beyond FastAPI's default: the served vocabularies as enums
and exact key patterns."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from features.events import EVENT_TYPES
from serving.service.contacts import CONTACT_EVENTS
from serving.service.decision_service import DecisionService


def document_vocabularies(app: FastAPI, service: DecisionService) -> None:
    """Name the served catalog's decision points and the known event types as enums in
    ``/openapi.json``: a schema-valid request is then never refused for an unknown name,
    which schemathesis' positive-data check holds the API to."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        props = schema.get("components", {}).get("schemas", {})
        points = sorted(getattr(service.catalog, "decision_points", {}) or {})
        decide = props.get("DecideRequest", {}).get("properties", {})
        if points and "decision_point" in decide:
            decide["decision_point"] = {**decide["decision_point"], "enum": points}
        event = props.get("EventRequest", {}).get("properties", {})
        if "type" in event:
            event["type"] = {**event["type"], "enum": [*EVENT_TYPES, *CONTACT_EVENTS, "identify"]}
        _exact_key_patterns(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _exact_key_patterns(node: Any) -> None:
    """pydantic writes ``dict[Key, V]`` with a key pattern as ``patternProperties``, which
    lets keys that miss the pattern through; say what is validated instead: the pattern
    on ``propertyNames`` and the value schema as ``additionalProperties``."""
    if isinstance(node, dict):
        patterns = node.get("patternProperties")
        if isinstance(patterns, dict) and len(patterns) == 1 and "propertyNames" in node:
            ((pattern, value),) = patterns.items()
            node["propertyNames"] = {**node["propertyNames"], "pattern": pattern}
            node["additionalProperties"] = value
            del node["patternProperties"]
        for child in node.values():
            _exact_key_patterns(child)
    elif isinstance(node, list):
        for child in node:
            _exact_key_patterns(child)
