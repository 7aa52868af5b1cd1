"""The embedded backend: one SQLite file in WAL mode (readers never block the writer)."""

from __future__ import annotations

from pathlib import Path

from agogosml.monitor.store.base import Retention, SqlEventStore
from agogosml.sqldb.sqlite import SqliteConnection


class SqliteEventStore(SqlEventStore):
    """`path` is a file (created with its folder if missing) or ":memory:"; `schema_version`
    stops migrating at that version (for tests of migrations), None brings it up to date."""

    def __init__(self, path: str | Path, *, retention: Retention | None = None,
                 schema_version: int | None = None) -> None:
        super().__init__(SqliteConnection(path), retention, schema_version)
