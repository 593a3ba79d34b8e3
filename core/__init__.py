"""The bottom layer: what every package shares (the error root, the compiled-module import)."""
