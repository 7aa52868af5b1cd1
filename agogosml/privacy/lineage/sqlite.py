"""The embedded backend: one SQLite file in WAL mode, foreign keys enforced."""

from __future__ import annotations

from pathlib import Path

from agogosml.privacy.lineage.index import SqlLineageIndex
from agogosml.sqldb.sqlite import SqliteConnection


class SqliteLineageIndex(SqlLineageIndex):
    """`path` is a file (created with its folder if missing) or ":memory:"."""

    def __init__(self, path: str | Path, *, schema_version: int | None = None) -> None:
        super().__init__(SqliteConnection(path, foreign_keys=True), schema_version)
