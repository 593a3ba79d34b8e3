"""The decision service (no HTTP): its stages, the ports its collaborators implement, the
policies in service, signed event ids and metrics."""
