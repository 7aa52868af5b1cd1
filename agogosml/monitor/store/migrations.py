"""The event store's schema, as numbered migrations (agogosml.sqldb.schema says how they
are applied); its version table is `schema_version`.

Times are integer milliseconds since the epoch. JSON columns are TEXT holding compact JSON,
the same on both backends (the store reads them back; queries filter on the plain columns).
`{id}` in a statement is each backend's auto-increment primary key.
"""

from __future__ import annotations

from agogosml.sqldb.schema import Migration, Schema

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "events, labels and trigger firings", (
        # One row per scored event and model version: a redelivered event (at-least-once)
        # hits the primary key and is not stored, or counted, twice.
        """CREATE TABLE events (
            event_id TEXT NOT NULL,
            model_version TEXT NOT NULL,
            model_name TEXT NOT NULL,
            subject TEXT,
            event_time_ms BIGINT NOT NULL,
            scored_at_ms BIGINT NOT NULL,
            prediction TEXT NOT NULL,
            scores TEXT NOT NULL,
            features TEXT NOT NULL,
            ingested_at_ms BIGINT NOT NULL,
            PRIMARY KEY (event_id, model_version))""",
        "CREATE INDEX events_by_time ON events (event_time_ms, event_id, model_version)",
        "CREATE INDEX events_by_version ON events (model_version, event_time_ms)",
        # Ground truth arrives late and joins by event id; a correction replaces the label.
        """CREATE TABLE labels (
            event_id TEXT PRIMARY KEY,
            label TEXT NOT NULL,
            arrived_at_ms BIGINT NOT NULL)""",
        """CREATE TABLE firings (
            id {id},
            rule TEXT NOT NULL,
            fired_at_ms BIGINT NOT NULL,
            evidence TEXT NOT NULL,
            action TEXT NOT NULL,
            outcome TEXT NOT NULL)""",
        "CREATE INDEX firings_by_time ON firings (fired_at_ms)",
    )),
    Migration(2, "per-window rollups of compacted events", (
        # What compact() leaves of raw events past retention: per window, model version and
        # prediction, the count and the sum of each numeric score (mean = sum / count).
        """CREATE TABLE rollups (
            window_ms BIGINT NOT NULL,
            window_start_ms BIGINT NOT NULL,
            model_name TEXT NOT NULL,
            model_version TEXT NOT NULL,
            prediction TEXT NOT NULL,
            count BIGINT NOT NULL,
            score_sums TEXT NOT NULL,
            PRIMARY KEY (window_ms, window_start_ms, model_name, model_version, prediction))""",
        "CREATE INDEX rollups_by_time ON rollups (window_start_ms, model_version)",
    )),
    Migration(3, "events by subject, for erasure", (
        # `forget_subject` finds a data subject's events without scanning the table.
        "CREATE INDEX events_by_subject ON events (subject)",
    )),
)

SCHEMA = Schema("the event store", "schema_version", MIGRATIONS)
CURRENT_VERSION = SCHEMA.current
