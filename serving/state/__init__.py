"""State that every replica shares, each behind a small protocol with an embedded (SQLite)
and a networked (Redis) implementation run by the same contract tests."""
