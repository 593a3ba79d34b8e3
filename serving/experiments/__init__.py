"""Experiments: variants, the global holdout and sticky hashed assignment."""
