"""The embedded backend: one SQLite file in WAL mode (readers never block the writer)."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class SqliteConnection:
    """`path` is a file (created with its folder if missing) or ":memory:". Autocommit;
    writes run in explicit BEGIN IMMEDIATE transactions, and the lock serialises the
    threads, so the connection can be shared."""

    dialect = "sqlite"

    def __init__(self, path: str | Path, *, foreign_keys: bool = False) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self._connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints in WAL
        self._connection.execute("PRAGMA busy_timeout=10000")
        if foreign_keys:
            self._connection.execute("PRAGMA foreign_keys=ON")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        with self.lock:
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

    def cursor(self) -> Any:
        return self._connection.cursor()

    def sql(self, query: str) -> str:
        return query

    def lock_schema(self, cursor: Any, version_table: str) -> None:
        del cursor, version_table  # BEGIN IMMEDIATE already holds other writers off

    def close(self) -> None:
        with self.lock:
            self._connection.close()
