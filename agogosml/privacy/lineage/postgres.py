"""The server backend: PostgreSQL through psycopg 3 (the `monitor` extra)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from agogosml.privacy.lineage.index import SqlLineageIndex


class PostgresLineageIndex(SqlLineageIndex):
    """`conninfo` is a libpq connection string or URL (postgresql://user@host:port/db)."""

    dialect = "postgres"

    def __init__(self, conninfo: str, *, schema_version: int | None = None) -> None:
        import psycopg  # only the server backend needs the driver

        self._connection = psycopg.connect(conninfo, autocommit=True)
        super().__init__(schema_version)

    def _sql(self, query: str) -> str:
        return query.replace("?", "%s")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._lock, self._connection.transaction(), self._connection.cursor() as cursor:
            yield cursor

    def _cursor(self) -> Any:
        return self._connection.cursor()

    def _lock_schema(self, cursor: Any) -> None:
        cursor.execute("LOCK TABLE lineage_schema_version IN EXCLUSIVE MODE")

    def _insert_subjects(self, cursor: Any, run_key: int, subjects: Sequence[str]) -> None:
        # COPY: a run's tens of thousands of subjects in one round trip. The run is new in
        # this transaction, so no row can conflict.
        with cursor.copy("COPY lineage_subjects (subject, run_key) FROM STDIN") as copy:
            for subject in subjects:
                copy.write_row((subject, run_key))

    def close(self) -> None:
        with self._lock:
            self._connection.close()
