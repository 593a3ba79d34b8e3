"""The online service: settings, wiring, and the sub-packages below. The command line is
not here (``cli``)."""
