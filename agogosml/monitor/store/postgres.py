"""The server backend: PostgreSQL through psycopg 3 (the `monitor` extra)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from agogosml.monitor.store.base import Retention, SqlEventStore


class PostgresEventStore(SqlEventStore):
    """`conninfo` is a libpq connection string or URL (postgresql://user@host:port/db)."""

    dialect = "postgres"

    def __init__(self, conninfo: str, *, retention: Retention | None = None,
                 schema_version: int | None = None) -> None:
        import psycopg  # only the server backend needs the driver (the `monitor` extra)

        self._connection = psycopg.connect(conninfo, autocommit=True)
        super().__init__(retention, schema_version)

    def _sql(self, query: str) -> str:
        return query.replace("?", "%s")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._lock, self._connection.transaction(), self._connection.cursor() as cursor:
            yield cursor

    def _lock_schema(self, cursor: Any) -> None:
        cursor.execute("LOCK TABLE schema_version IN EXCLUSIVE MODE")

    def _cursor(self) -> Any:
        return self._connection.cursor()

    def close(self) -> None:
        with self._lock:
            self._connection.close()
