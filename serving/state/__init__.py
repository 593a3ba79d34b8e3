"""Service state every replica shares, behind small protocols (:mod:`serving.state.ports`),
each with an embedded implementation (SQLite under ``$MAESTRO_HOME``) and a networked one
(PostgreSQL, Redis) that replicas on several machines reach alike."""
