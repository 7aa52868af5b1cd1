"""The lineage index's schema, as numbered migrations with their own version table.

The index may share a database with the monitor's event store: its tables are prefixed
`lineage_` and its versions live in `lineage_schema_version`, so the two migrate apart.
A migration is never edited once released: a change is a new, higher-numbered one.
"""

from __future__ import annotations

from agogosml.sqldb.schema import Migration, Schema

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "runs, their registered versions and their subjects", (
        # run_key stands for the run in the subjects table: tens of millions of rows
        # repeating a 32-character MLflow run id would double the index's size.
        """CREATE TABLE lineage_runs (
            run_key {id},
            run_id TEXT NOT NULL UNIQUE,
            model_name TEXT NOT NULL,
            dataset_digest TEXT NOT NULL,
            recorded_at_ms BIGINT NOT NULL)""",
        """CREATE TABLE lineage_run_versions (
            run_key BIGINT NOT NULL REFERENCES lineage_runs (run_key),
            model_name TEXT NOT NULL,
            model_version TEXT NOT NULL,
            PRIMARY KEY (run_key, model_name, model_version))""",
        # Keyed by subject first: "which runs used X" reads one contiguous range, and the
        # key refuses a subject twice in a run.
        """CREATE TABLE lineage_subjects (
            subject TEXT NOT NULL,
            run_key BIGINT NOT NULL REFERENCES lineage_runs (run_key),
            PRIMARY KEY (subject, run_key)){without_rowid}""",
    )),
)

# SQLite stores a WITHOUT ROWID table as its primary key's B-tree alone: no second copy of
# every subject in a separate index.
WITHOUT_ROWID = {"sqlite": " WITHOUT ROWID", "postgres": ""}

SCHEMA = Schema("the lineage index", "lineage_schema_version", MIGRATIONS,
                {"without_rowid": WITHOUT_ROWID})
CURRENT_VERSION = SCHEMA.current
