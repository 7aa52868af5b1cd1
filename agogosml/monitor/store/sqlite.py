"""The embedded backend: one SQLite file in WAL mode (readers never block the writer)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agogosml.monitor.store.base import Retention, SqlEventStore


class SqliteEventStore(SqlEventStore):
    """`path` is a file (created with its folder if missing) or ":memory:"; `schema_version`
    stops migrating at that version (for tests of migrations), None brings it up to date."""

    dialect = "sqlite"

    def __init__(self, path: str | Path, *, retention: Retention | None = None,
                 schema_version: int | None = None) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Autocommit; writes run in explicit BEGIN IMMEDIATE transactions. The store's lock
        # serialises its threads, so the connection can be shared.
        self._connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints in WAL
        self._connection.execute("PRAGMA busy_timeout=10000")
        super().__init__(retention, schema_version)

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

    def close(self) -> None:
        with self._lock:
            self._connection.close()
