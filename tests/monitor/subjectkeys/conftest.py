"""The subject key store on both backends, through tests/monitor/conftest.py's `backend` and
`new_location` (a SQLite file or a new database on the session's PostgreSQL server)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agogosml.privacy.keys import Keyring
from agogosml.privacy.subjectkeys import (
    SubjectKeyStore,
    postgres_subject_keys,
    sqlite_subject_keys,
)


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


StoreFactory = Callable[..., SubjectKeyStore]


def kek_ring(**keys: bytes) -> Keyring:
    return Keyring(encryption_keys=keys or {"kek-1": os.urandom(32)})


@pytest.fixture
def kek() -> Keyring:
    return kek_ring()


@pytest.fixture
def location(new_location: Callable[[], str]) -> str:
    return new_location()


@pytest.fixture
def open_store(backend: str, kek: Keyring) -> Iterator[StoreFactory]:
    """Opens a store at a location (the test's KEK unless given; closed at the test's end)."""
    opened: list[SubjectKeyStore] = []

    def open_at(location: str, *, kek_keyring: Keyring | None = None,
                cache_ttl_s: float = 30.0, clock: Callable[[], float] | None = None,
                ) -> SubjectKeyStore:
        opener = postgres_subject_keys if backend == "postgres" else sqlite_subject_keys
        store = opener(location, kek if kek_keyring is None else kek_keyring,
                       cache_ttl_s=cache_ttl_s, clock=clock or Clock())
        opened.append(store)
        return store

    yield open_at
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: StoreFactory, location: str) -> SubjectKeyStore:
    return open_store(location)


Query = Callable[..., list[tuple[object, ...]]]


@pytest.fixture
def raw_sql(backend: str, location: str) -> Iterator[Query]:
    """Runs SQL on the store's database behind its back (`?` placeholders), committed."""
    if backend == "postgres":
        import psycopg

        connection: Any = psycopg.connect(location, autocommit=True)
    else:
        import sqlite3

        connection = sqlite3.connect(location, isolation_level=None)

    def run(query: str, *params: object) -> list[tuple[object, ...]]:
        text = query.replace("?", "%s") if backend == "postgres" else query
        cursor = connection.execute(text, params)
        return list(cursor.fetchall()) if cursor.description else []

    yield run
    connection.close()
