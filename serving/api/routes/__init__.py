"""The HTTP API's routes, one module per resource. Each module's ``register(app, ...)``
adds its routes to the app around the service they call; they are added to the app
itself, not through an included ``APIRouter``, so the route table stays flat."""
