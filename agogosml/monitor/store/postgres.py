"""The server backend: PostgreSQL through psycopg 3 (the `monitor` extra)."""

from __future__ import annotations

from agogosml.monitor.store.base import Retention, SqlEventStore
from agogosml.sqldb.postgres import PostgresConnection


class PostgresEventStore(SqlEventStore):
    """`conninfo` is a libpq connection string or URL (postgresql://user@host:port/db)."""

    def __init__(self, conninfo: str, *, retention: Retention | None = None,
                 schema_version: int | None = None) -> None:
        super().__init__(PostgresConnection(conninfo), retention, schema_version)
