"""A real PostgreSQL server for the test session: ``initdb`` into a fresh temporary
directory, ``pg_ctl start`` on a free 127.0.0.1 port, stopped (and its directory removed)
at session end. Missing binaries fail the session's PostgreSQL tests (``make test-deps``
installs them); they are never skipped.

PostgreSQL refuses to run as root: under root the server runs as the ``postgres`` user
(``runuser``), owning its data directory.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from live_servers import free_port

BIN_DIRS = ("/usr/local/bin", "/usr/lib/postgresql/15/bin")


def _binary(name: str) -> str:
    for directory in BIN_DIRS:
        path = Path(directory) / name
        if path.exists():
            return str(path)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} is not installed: run `make test-deps`")
    return found


@dataclass
class PostgresServer:
    """One running server; :meth:`database` makes a fresh database for a test."""

    root: Path
    port: int
    user: str

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def database(self) -> str:
        """A new empty database's URL (each test its own: no state leaks between tests)."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self._run(_binary("pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, *argv: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *argv], check=True, capture_output=True, timeout=120)


def start_postgres() -> PostgresServer:
    """Initialise and start a server on a free port (trust authentication, loopback only)."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    root = Path(tempfile.mkdtemp(prefix="maestro-pg-"))
    user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
    server = PostgresServer(root=root, port=free_port(), user=user)
    server._run(initdb, "-D", str(root / "data"), "-U", user, "-A", "trust", "--no-sync")
    options = (
        f"-p {server.port} -c listen_addresses=127.0.0.1 -k {root} -c fsync=off"
        " -c max_connections=200"
    )
    server._run(pg_ctl, "-D", str(root / "data"), "-o", options, "-l", str(root / "log"),
                "-w", "-t", "60", "start")
    return server
