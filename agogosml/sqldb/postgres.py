"""The server backend: PostgreSQL through psycopg 3 (the `monitor` extra)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any


class PostgresConnection:
    """`conninfo` is a libpq connection string or URL (postgresql://user@host:port/db).

    A connection the server dropped (a restart, a failover, a network cut) fails the
    operation under way; the next one connects afresh, so a caller that retries recovers
    once the server is back instead of failing for ever on a closed connection."""

    dialect = "postgres"

    def __init__(self, conninfo: str) -> None:
        import psycopg  # only the server backend needs the driver

        self.lock = threading.RLock()
        self._conninfo = conninfo
        self._connection = psycopg.connect(conninfo, autocommit=True)

    def _live(self) -> Any:
        if self._connection.closed or self._connection.broken:
            import psycopg

            self._connection = psycopg.connect(self._conninfo, autocommit=True)
        return self._connection

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        with self.lock:
            connection = self._live()
            with connection.transaction(), connection.cursor() as cursor:
                yield cursor

    def cursor(self) -> Any:
        return self._live().cursor()

    def sql(self, query: str) -> str:
        return query.replace("?", "%s")

    def lock_schema(self, cursor: Any, version_table: str) -> None:
        cursor.execute(f"LOCK TABLE {version_table} IN EXCLUSIVE MODE")

    def close(self) -> None:
        with self.lock:
            self._connection.close()
