"""Service state every replica shares, behind small protocols (:mod:`serving.state.ports`,
:mod:`serving.state.contacts`), each with an embedded implementation (SQLite under
``$MAESTRO_HOME``) and a networked one (PostgreSQL, Redis) run by the same contract tests."""
