"""Opening the database a URL names: `sqlite:///<path>` or `postgresql://…`."""

from __future__ import annotations

from pathlib import Path

from agogosml.errors import ConfigurationError
from agogosml.sqldb.database import Connection

SQLITE_URL = "sqlite:///"
POSTGRES_URLS = ("postgresql://", "postgres://")


def connect(url: str, *, foreign_keys: bool = False) -> Connection:
    """A connection to the database `url` names; a SQLite file's folder is created. The URL
    may hold a password: it is never put into an error message here."""
    if url.startswith(SQLITE_URL):
        from agogosml.sqldb.sqlite import SqliteConnection

        path = url.removeprefix(SQLITE_URL)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return SqliteConnection(path, foreign_keys=foreign_keys)
    if url.startswith(POSTGRES_URLS):
        from agogosml.sqldb.postgres import PostgresConnection

        return PostgresConnection(url)
    raise ConfigurationError("a store URL must start with sqlite:/// or postgresql://")
