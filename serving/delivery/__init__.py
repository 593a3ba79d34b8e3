"""Delivery of triggered decisions to the destinations of ``triggers.yaml``: a webhook
(HMAC-signed HTTP POST) or a Redis Stream, from a durable outbox with retries and a
dead-letter store."""
