"""The lineage index's interface and its SQL implementation shared by both backends.

`SqlLineageIndex` works over a DB-API connection in autocommit mode, like the monitor's
event store: a backend says how to connect, run a write transaction, spell parameters and
bulk-insert a run's subjects. Calls are synchronous and serialised by a lock, so one index
can be shared between threads (the HTTP router runs them in worker threads).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, Protocol

from agogosml.privacy.lineage.schema import SCHEMA
from agogosml.privacy.lineage.subjects import LineageError, check_identifier, check_subject
from agogosml.sqldb.database import Connection, SqlDatabase, now_ms
from agogosml.sqldb.urls import POSTGRES_URLS, SQLITE_URL


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


class SqlLineageIndex(SqlDatabase):
    """`LineageIndex` over one backend connection (see agogosml.sqldb)."""

    schema = SCHEMA

    def __init__(self, connection: Connection, schema_version: int | None = None) -> None:
        super().__init__(connection, schema_version)

    def _insert_subjects(self, cursor: Any, run_key: int, subjects: Sequence[str]) -> None:
        """Stores `subjects` (unique) for a run that has none yet, inside the transaction."""
        cursor.executemany(self._sql("INSERT INTO lineage_subjects (subject, run_key) "
                                     "VALUES (?, ?)"),
                           ((subject, run_key) for subject in subjects))

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
                (run_id, model_name, dataset_digest, now_ms()))
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
    if url.startswith(POSTGRES_URLS):
        from agogosml.privacy.lineage.postgres import PostgresLineageIndex

        return PostgresLineageIndex(url)
    raise LineageError("the lineage index URL must start with sqlite:/// or postgresql://")
