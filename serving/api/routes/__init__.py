"""One module per resource of the HTTP API; each registers its routes on the app."""
