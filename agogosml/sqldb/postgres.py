"""The server backend: PostgreSQL through psycopg 3 (the `monitor` extra)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any


class PostgresConnection:
    """`conninfo` is a libpq connection string or URL (postgresql://user@host:port/db)."""

    dialect = "postgres"

    def __init__(self, conninfo: str) -> None:
        import psycopg  # only the server backend needs the driver

        self.lock = threading.RLock()
        self._connection = psycopg.connect(conninfo, autocommit=True)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        with self.lock, self._connection.transaction(), self._connection.cursor() as cursor:
            yield cursor

    def cursor(self) -> Any:
        return self._connection.cursor()

    def sql(self, query: str) -> str:
        return query.replace("?", "%s")

    def lock_schema(self, cursor: Any, version_table: str) -> None:
        cursor.execute(f"LOCK TABLE {version_table} IN EXCLUSIVE MODE")

    def close(self) -> None:
        with self.lock:
            self._connection.close()
