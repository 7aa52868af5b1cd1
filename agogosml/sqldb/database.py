"""A database with a schema, over one backend connection.

Every method is synchronous and serialised by the connection's lock, so one database object
can be shared between threads; writes run in the connection's explicit transactions.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

from agogosml.sqldb.schema import Schema, SchemaTooNewError


class Connection(Protocol):
    """One backend's connection in autocommit mode, as a database uses it."""

    dialect: str
    lock: threading.RLock

    def transaction(self) -> contextlib.AbstractContextManager[Any]:
        """A write transaction under the lock; yields a cursor."""
        ...

    def cursor(self) -> Any:
        """A cursor for reads outside a transaction (the caller holds the lock)."""
        ...

    def sql(self, query: str) -> str:
        """`query` with `?` placeholders in the backend's spelling."""
        ...

    def lock_schema(self, cursor: Any, version_table: str) -> None:
        """Holds off other processes migrating the same schema until the transaction ends."""
        ...

    def close(self) -> None: ...


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class SqlDatabase:
    """Migrated to `schema` when opened (up to `schema_version` if given, for tests of
    migrations); closed again if that fails."""

    schema: ClassVar[Schema]

    def __init__(self, connection: Connection, schema_version: int | None = None) -> None:
        self._db = connection
        self._lock = connection.lock
        self.dialect = connection.dialect
        try:
            self._migrate(self.schema.current if schema_version is None else schema_version)
        except BaseException:
            self.close()
            raise

    def _transaction(self) -> contextlib.AbstractContextManager[Any]:
        return self._db.transaction()

    def _cursor(self) -> Any:
        return self._db.cursor()

    def _sql(self, query: str) -> str:
        return self._db.sql(query)

    def close(self) -> None:
        self._db.close()

    def _query(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            cursor = self._cursor()
            try:
                cursor.execute(self._sql(query), tuple(params))
                return list(cursor.fetchall())
            finally:
                cursor.close()

    def _migrate(self, target: int) -> None:
        schema = self.schema
        with self._lock:
            with self._transaction() as cursor:
                cursor.execute(schema.version_table_ddl())
            current = self.schema_version()
            if current > schema.current:
                raise SchemaTooNewError(
                    f"{schema.owner}'s schema is version {current}, newer than this code's "
                    f"{schema.current}: upgrade agogosml")
            for migration in schema.migrations:
                if not current < migration.version <= target:
                    continue
                with self._transaction() as cursor:
                    self._db.lock_schema(cursor, schema.version_table)
                    cursor.execute(f"SELECT MAX(version) FROM {schema.version_table}")  # noqa: S608
                    if (cursor.fetchone()[0] or 0) >= migration.version:
                        continue  # another process applied it meanwhile
                    for statement in schema.statements(migration, self.dialect):
                        cursor.execute(statement)
                    cursor.execute(self._sql(
                        f"INSERT INTO {schema.version_table} "  # noqa: S608 - a constant
                        "(version, name, applied_at_ms) VALUES (?, ?, ?)"),
                        (migration.version, migration.name, now_ms()))

    def schema_version(self) -> int:
        [(version,)] = self._query(
            f"SELECT MAX(version) FROM {self.schema.version_table}")  # noqa: S608
        return int(version or 0)

    def __enter__(self) -> SqlDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
