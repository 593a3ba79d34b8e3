"""The ``triggers.yaml`` the trigger tests share: the issue's shape (a segment, two
destinations) with a dwell, an absence with a sequence, and a trigger without a dwell."""

from __future__ import annotations

from pathlib import Path

FEATURES = {"lifetime_value": float, "tenure_days": int, "region": str}
CATALOG = Path(__file__).parents[2] / "policies" / "catalog.yaml"

TRIGGERS_YAML = """\
segments:
  vip: "customer.lifetime_value > 2000"
destinations:
  crm_hook: {webhook: "http://127.0.0.1:9000/hook", secret_env: MAESTRO_WEBHOOK_SECRET}
  engine_stream: {redis_stream: "maestro:deliveries"}
triggers:
  vip_on_pricing:
    on: {type: page_view, when: ["event.properties.page == 'pricing'", "segment.vip"]}
    dwell: {seconds: 120, cancel_on: [{type: page_view}]}
    decide: {decision_point: churn_risk}
    deliver: crm_hook
  abandoned_cart:
    on: {type: cart_updated, when: ["event.properties.cart_value > 0"]}
    dwell:
      seconds: 3600
      cancel_on: [{type: purchase}, {type: page_view, when: "event.properties.page == 'buy'"}]
    decide: {decision_point: cart_abandoned, context: {reason: cart}}
    deliver: engine_stream
    then:
      - {seconds: 86400, deliver: crm_hook}
  overdue_now:
    on: {type: invoice_overdue}
    decide: {decision_point: billing_overdue}
    deliver: engine_stream
"""
