"""The monitor's event store: scored events, late labels and trigger firings, with schema
migrations and retention that folds old events into per-window rollups.

Two backends behind one interface (`EventStore`): SQLite, embedded and the default
(`SqliteEventStore`, stdlib `sqlite3` in WAL mode), and PostgreSQL for a server
(`PostgresEventStore`, psycopg 3: the `monitor` extra). Both are synchronous and safe to
share between threads; `AsyncEventStore` runs one off the event loop."""

from agogosml.monitor.store.base import (
    AsyncEventStore,
    Erased,
    EventStore,
    Firing,
    Label,
    LabelledPrediction,
    Page,
    Retention,
    Rollup,
    ScoredEvent,
    WindowCount,
)
from agogosml.monitor.store.migrations import CURRENT_VERSION, MIGRATIONS
from agogosml.monitor.store.postgres import PostgresEventStore
from agogosml.monitor.store.sqlite import SqliteEventStore

__all__ = [
    "CURRENT_VERSION",
    "MIGRATIONS",
    "AsyncEventStore",
    "Erased",
    "EventStore",
    "Firing",
    "Label",
    "LabelledPrediction",
    "Page",
    "PostgresEventStore",
    "Retention",
    "Rollup",
    "ScoredEvent",
    "SqliteEventStore",
    "WindowCount",
]
