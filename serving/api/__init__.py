"""The HTTP edge: ``create_app``, one module of routes per resource (``routes/``), the
ASGI fast path, request decoding, schemas, admission and the one error mapping."""
