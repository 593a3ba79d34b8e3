"""PostgreSQL connections for the shared state: one small pool per handle (autocommit,
statements prepared by psycopg after a few uses), the schema created once under an
advisory lock (replicas starting together do not race on ``CREATE TABLE``), and every
driver error turned into :class:`serving.errors.SharedStateError`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from serving.errors import SharedStateError

#: any value: the advisory lock that serialises schema creation across replicas
_SCHEMA_LOCK = 0x6D61657374726F
SCHEMES = ("postgresql://", "postgres://")


def open_pool(url: str, ddl: tuple[str, ...], *, max_size: int = 4,
              timeout: float = 10.0) -> ConnectionPool:
    """A ready pool on ``url`` whose schema ``ddl`` exists; fails loudly when unreachable."""
    pool = ConnectionPool(
        url,
        min_size=1,
        max_size=max_size,
        kwargs={"autocommit": True, "connect_timeout": max(1, int(timeout))},
        timeout=timeout,
        open=False,
    )
    try:
        pool.open(wait=True, timeout=timeout)
        with pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for statement in ddl:
                conn.execute(statement)
    except Exception as exc:  # unreachable, refused, bad credentials, timeout
        pool.close()
        raise SharedStateError(f"cannot use the shared state at {redact(url)}: {exc}") from exc
    return pool


def redact(url: str) -> str:
    """``url`` without its password (error messages and logs never carry it)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


@contextlib.contextmanager
def errors_as_state_errors(what: str) -> Iterator[None]:
    """Driver and pool errors inside become :class:`SharedStateError` naming ``what``."""
    from psycopg_pool import PoolTimeout

    try:
        yield
    except (psycopg.Error, PoolTimeout) as exc:
        raise SharedStateError(f"cannot {what}: {exc}") from exc


def execute(pool: ConnectionPool, what: str, sql: str,
            params: tuple[Any, ...]) -> tuple[list[tuple[Any, ...]], int]:
    """Run one statement; its rows (none without a result) and its row count."""
    with errors_as_state_errors(what), pool.connection() as conn:
        cur = conn.execute(sql, params)
        rows = cur.fetchall() if cur.description is not None else []
        return rows, cur.rowcount
