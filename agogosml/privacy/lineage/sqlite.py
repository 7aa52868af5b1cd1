"""The embedded backend: one SQLite file in WAL mode."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from agogosml.privacy.lineage.index import SqlLineageIndex


class SqliteLineageIndex(SqlLineageIndex):
    """`path` is a file (created with its folder if missing) or ":memory:"."""

    dialect = "sqlite"

    def __init__(self, path: str | Path, *, schema_version: int | None = None) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=NORMAL")
        self._connection.execute("PRAGMA busy_timeout=10000")
        self._connection.execute("PRAGMA foreign_keys=ON")
        super().__init__(schema_version)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._lock:
            cursor = self._connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
            except BaseException:
                self._connection.rollback()
                raise
            else:
                self._connection.commit()
            finally:
                cursor.close()

    def _cursor(self) -> Any:
        return self._connection.cursor()

    def _insert_subjects(self, cursor: Any, run_key: int, subjects: Sequence[str]) -> None:
        cursor.executemany("INSERT INTO lineage_subjects (subject, run_key) VALUES (?, ?)",
                           ((subject, run_key) for subject in subjects))

    def close(self) -> None:
        with self._lock:
            self._connection.close()
