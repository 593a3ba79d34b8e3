"""Errors of delivery: defined with the serving layer's others (:mod:`serving.errors`, where
the one-root test looks for them), named here for the delivery package's callers."""

from __future__ import annotations

from serving.errors import DeliveryConfigError, OutboxError, UnknownDeliveryError

__all__ = ["DeliveryConfigError", "OutboxError", "UnknownDeliveryError"]
