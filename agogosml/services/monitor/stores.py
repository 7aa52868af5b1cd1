"""Opening the event store a URL names: sqlite:///<path> or postgresql://…"""

from __future__ import annotations

from pathlib import Path

from agogosml.monitor.store.base import Retention, SqlEventStore
from agogosml.services.monitor.settings import SQLITE


def open_store(url: str, retention: Retention) -> SqlEventStore:
    """The store, migrated to the current schema. The URL may hold a password: it is
    never logged or put into an error message here."""
    if url.startswith(SQLITE):
        from agogosml.monitor.store.sqlite import SqliteEventStore

        path = Path(url.removeprefix(SQLITE))
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteEventStore(path, retention=retention)
    from agogosml.monitor.store.postgres import PostgresEventStore

    return PostgresEventStore(url, retention=retention)
