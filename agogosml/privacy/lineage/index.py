"""The lineage index's interface and its SQL implementation shared by both backends.

`SqlLineageIndex` works over a DB-API connection in autocommit mode, like the monitor's
event store: a backend says how to connect, run a write transaction, spell parameters and
bulk-insert a run's subjects. Calls are synchronous and serialised by a lock, so one index
can be shared between threads (the HTTP router runs them in worker threads).
"""

from __future__ import annotations

import abc
import contextlib
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, Protocol

from agogosml.privacy.lineage.schema import CURRENT_VERSION, MIGRATIONS, VERSION_TABLE, statements
from agogosml.privacy.lineage.subjects import LineageError, check_identifier, check_subject

SQLITE_URL = "sqlite:///"


class VersionUse(NamedTuple):
    """A registered model version whose training run used the subject."""

    model_name: str
    model_version: str
    run_id: str
    dataset_digest: str


class RunRecord(NamedTuple):
    run_id: str
    model_name: str
    dataset_digest: str
    recorded_at_ms: int


class LineageIndex(Protocol):
    def record_run(self, run_id: str, model_name: str, dataset_digest: str,
                   subjects: Iterable[str]) -> int:
        """Records a training run and its subjects in one transaction; returns how many
        subjects were stored (0 when the run was recorded before: nothing is added)."""
        ...

    def record_version(self, run_id: str, model_name: str, model_version: str) -> bool:
        """Records that the run became this registered version; False if known already."""
        ...

    def versions_for(self, subject: str) -> list[VersionUse]: ...

    def runs_for(self, subject: str) -> list[RunRecord]: ...

    def forget_subject(self, subject: str) -> int:
        """Removes the subject from every run; returns the rows removed."""
        ...

    def close(self) -> None: ...


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class SqlLineageIndex(abc.ABC):
    dialect: str

    def __init__(self, schema_version: int | None = None) -> None:
        self._lock = threading.RLock()
        try:
            self._migrate(CURRENT_VERSION if schema_version is None else schema_version)
        except BaseException:
            self.close()
            raise

    # What a backend provides.

    @abc.abstractmethod
    def _transaction(self) -> contextlib.AbstractContextManager[Any]:
        """A write transaction; yields a cursor."""

    @abc.abstractmethod
    def _cursor(self) -> Any: ...

    @abc.abstractmethod
    def _insert_subjects(self, cursor: Any, run_key: int, subjects: Sequence[str]) -> None:
        """Stores `subjects` (unique) for a run that has none yet, inside the transaction."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def _sql(self, query: str) -> str:
        return query

    def _lock_schema(self, cursor: Any) -> None:
        del cursor

    # Shared implementation.

    def _query(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            cursor = self._cursor()
            try:
                cursor.execute(self._sql(query), tuple(params))
                return list(cursor.fetchall())
            finally:
                cursor.close()

    def _migrate(self, target: int) -> None:
        with self._lock:
            with self._transaction() as cursor:
                cursor.execute(VERSION_TABLE)
            current = self.schema_version()
            if current > CURRENT_VERSION:
                raise LineageError(f"the lineage index's schema is version {current}, newer "
                                   f"than this code's {CURRENT_VERSION}: upgrade agogosml")
            for migration in MIGRATIONS:
                if not current < migration.version <= target:
                    continue
                with self._transaction() as cursor:
                    self._lock_schema(cursor)
                    cursor.execute("SELECT MAX(version) FROM lineage_schema_version")
                    if (cursor.fetchone()[0] or 0) >= migration.version:
                        continue  # another process applied it meanwhile
                    for statement in statements(migration, self.dialect):
                        cursor.execute(statement)
                    cursor.execute(self._sql(
                        "INSERT INTO lineage_schema_version (version, name, applied_at_ms) "
                        "VALUES (?, ?, ?)"), (migration.version, migration.name, _now_ms()))

    def schema_version(self) -> int:
        [(version,)] = self._query("SELECT MAX(version) FROM lineage_schema_version")
        return int(version or 0)

    def record_run(self, run_id: str, model_name: str, dataset_digest: str,
                   subjects: Iterable[str]) -> int:
        check_identifier(run_id, "run_id")
        check_identifier(model_name, "model_name")
        check_identifier(dataset_digest, "dataset_digest")
        # Every subject is checked before anything is written: a run is recorded whole.
        unique = sorted({check_subject(subject) for subject in subjects})
        with self._lock, self._transaction() as cursor:
            cursor.execute(self._sql(
                "INSERT INTO lineage_runs (run_id, model_name, dataset_digest, recorded_at_ms) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (run_id) DO NOTHING RETURNING run_key"),
                (run_id, model_name, dataset_digest, _now_ms()))
            inserted = cursor.fetchone()
            if inserted is None:
                cursor.execute(self._sql(
                    "SELECT dataset_digest FROM lineage_runs WHERE run_id = ?"), (run_id,))
                [recorded] = cursor.fetchone()
                if recorded != dataset_digest:
                    raise LineageError(f"run {run_id} was recorded with dataset digest "
                                       f"{recorded}, not {dataset_digest}")
                return 0
            self._insert_subjects(cursor, int(inserted[0]), unique)
            return len(unique)

    def record_version(self, run_id: str, model_name: str, model_version: str) -> bool:
        check_identifier(model_name, "model_name")
        check_identifier(model_version, "model_version")
        with self._lock, self._transaction() as cursor:
            cursor.execute(self._sql("SELECT run_key FROM lineage_runs WHERE run_id = ?"),
                           (check_identifier(run_id, "run_id"),))
            row = cursor.fetchone()
            if row is None:
                raise LineageError(f"run {run_id} is not in the lineage index: record_run "
                                   "first")
            cursor.execute(self._sql(
                "INSERT INTO lineage_run_versions (run_key, model_name, model_version) "
                "VALUES (?, ?, ?) ON CONFLICT DO NOTHING"), (row[0], model_name, model_version))
            return bool(cursor.rowcount)

    def versions_for(self, subject: str) -> list[VersionUse]:
        rows = self._query(
            "SELECT v.model_name, v.model_version, r.run_id, r.dataset_digest "
            "FROM lineage_subjects s JOIN lineage_runs r ON r.run_key = s.run_key "
            "JOIN lineage_run_versions v ON v.run_key = s.run_key WHERE s.subject = ? "
            "ORDER BY v.model_name, v.model_version, r.run_id", (check_subject(subject),))
        return [VersionUse(*row) for row in rows]

    def runs_for(self, subject: str) -> list[RunRecord]:
        rows = self._query(
            "SELECT r.run_id, r.model_name, r.dataset_digest, r.recorded_at_ms "
            "FROM lineage_subjects s JOIN lineage_runs r ON r.run_key = s.run_key "
            "WHERE s.subject = ? ORDER BY r.recorded_at_ms, r.run_id",
            (check_subject(subject),))
        return [RunRecord(run_id, name, digest, int(at)) for run_id, name, digest, at in rows]

    def forget_subject(self, subject: str) -> int:
        with self._lock, self._transaction() as cursor:
            cursor.execute(self._sql("DELETE FROM lineage_subjects WHERE subject = ?"),
                           (check_subject(subject),))
            return int(cursor.rowcount)

    def __enter__(self) -> SqlLineageIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_lineage_index(url: str) -> SqlLineageIndex:
    """The index a URL names, migrated: sqlite:///<path> or postgresql://… (it may share
    the monitor's database). The URL may hold a password: it is never put in an error."""
    if url.startswith(SQLITE_URL):
        from agogosml.privacy.lineage.sqlite import SqliteLineageIndex

        return SqliteLineageIndex(url.removeprefix(SQLITE_URL))
    if url.startswith(("postgresql://", "postgres://")):
        from agogosml.privacy.lineage.postgres import PostgresLineageIndex

        return PostgresLineageIndex(url)
    raise LineageError("the lineage index URL must start with sqlite:/// or postgresql://")
