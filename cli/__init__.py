"""The ``maestro`` command: the composition root, the only package that knows every other."""
