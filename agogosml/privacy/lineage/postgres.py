"""The server backend: PostgreSQL through psycopg 3 (the `monitor` extra)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agogosml.privacy.lineage.index import SqlLineageIndex
from agogosml.sqldb.postgres import PostgresConnection


class PostgresLineageIndex(SqlLineageIndex):
    """`conninfo` is a libpq connection string or URL (postgresql://user@host:port/db)."""

    def __init__(self, conninfo: str, *, schema_version: int | None = None) -> None:
        super().__init__(PostgresConnection(conninfo), schema_version)

    def _insert_subjects(self, cursor: Any, run_key: int, subjects: Sequence[str]) -> None:
        # COPY: a run's tens of thousands of subjects in one round trip. The run is new in
        # this transaction, so no row can conflict.
        with cursor.copy("COPY lineage_subjects (subject, run_key) FROM STDIN") as copy:
            for subject in subjects:
                copy.write_row((subject, run_key))
