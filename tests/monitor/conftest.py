"""The event store's tests run against both backends: `store` is parametrized over SQLite
(a file in tmp_path) and a real PostgreSQL server (a new database per test on the session's
server). The PostgreSQL cases carry the `postgres` marker, as does any test that asks for
`postgres_server` itself (tests/conftest.py), so `make test-fast` leaves them out."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agogosml.monitor.store import PostgresEventStore, Retention, SqliteEventStore
from agogosml.monitor.store.base import SqlEventStore
from tests.monitor.postgres import PostgresServer, running_server

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

StoreFactory = Callable[..., SqlEventStore]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with running_server() as server:
        yield server


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def new_location(backend: str, request: pytest.FixtureRequest,
                 tmp_path: Path) -> Callable[[], str]:
    """A new, empty place for a store per call: a SQLite file or a PostgreSQL database."""
    numbers = itertools.count()
    server: PostgresServer | None = (
        request.getfixturevalue("postgres_server") if backend == "postgres" else None)

    def location() -> str:
        if server is not None:
            return server.create_database()
        return str(tmp_path / f"store-{next(numbers)}.db")

    return location


@pytest.fixture
def make_store(backend: str) -> Iterator[StoreFactory]:
    """Opens the backend's store at a location (closed at the test's end)."""
    opened: list[SqlEventStore] = []

    def make(location: str, *, retention: Retention | None = None,
             schema_version: int | None = None) -> SqlEventStore:
        store: SqlEventStore = (
            PostgresEventStore(location, retention=retention, schema_version=schema_version)
            if backend == "postgres" else
            SqliteEventStore(location, retention=retention, schema_version=schema_version))
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: StoreFactory, new_location: Callable[[], str]) -> SqlEventStore:
    return make_store(new_location())
