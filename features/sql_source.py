"""Rows of a PostgreSQL table for a ``kind: postgres`` source (psycopg 3).

``maestro load`` reads the table's declared columns with one ``SELECT``; the rows are
then checked and staged exactly like a file's, into the file offline store Feast reads
(one Feast repo has one offline store, and the synthetic and file sources already use
the file store). ``dsn`` is a libpq connection string, or ``env:NAME`` to read it from
the environment variable ``NAME`` (so no password needs to sit in ``features.yaml``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from features.errors import SqlSourceError

if TYPE_CHECKING:
    import pandas as pd





def resolve_dsn(dsn: str) -> str:
    """``env:NAME`` → the value of ``$NAME``; any other text as is."""
    if dsn.startswith("env:"):
        name = dsn.removeprefix("env:")
        value = os.environ.get(name)
        if not value:
            raise SqlSourceError(f"the environment variable {name} (the source's dsn) is not set")
        return value
    return dsn


def _table(name: str) -> sql.Composable:
    return sql.Identifier(*name.split(".", 1))


def table_columns(dsn: str, table: str) -> list[str]:
    """The column names of ``table``."""
    try:
        with psycopg.connect(resolve_dsn(dsn), connect_timeout=10) as conn:
            cur = conn.execute(sql.SQL("SELECT * FROM {} LIMIT 0").format(_table(table)))
            return [d.name for d in cur.description or ()]
    except psycopg.Error as exc:
        raise SqlSourceError(f"cannot read table {table}: {str(exc).strip()}") from exc


def read_table(dsn: str, table: str, columns: Sequence[str]) -> pd.DataFrame:
    """The declared ``columns`` of every row of ``table``, values as the database types them."""
    import pandas as pd

    query = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in columns), _table(table)
    )
    try:
        with psycopg.connect(resolve_dsn(dsn), connect_timeout=10) as conn:
            rows = conn.execute(query).fetchall()
    except psycopg.Error as exc:
        raise SqlSourceError(f"cannot read table {table}: {str(exc).strip()}") from exc
    return pd.DataFrame.from_records(rows, columns=list(columns))
