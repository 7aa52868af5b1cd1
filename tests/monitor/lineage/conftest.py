"""The lineage index on both backends, through tests/monitor/conftest.py's `backend` and
`new_location` (a SQLite file or a new database on the session's PostgreSQL server)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from agogosml.privacy.lineage import SqlLineageIndex
from agogosml.privacy.lineage.postgres import PostgresLineageIndex
from agogosml.privacy.lineage.sqlite import SqliteLineageIndex

IndexFactory = Callable[..., SqlLineageIndex]


@pytest.fixture
def open_index(backend: str) -> Iterator[IndexFactory]:
    opened: list[SqlLineageIndex] = []

    def open_at(location: str, *, schema_version: int | None = None) -> SqlLineageIndex:
        index: SqlLineageIndex = (
            PostgresLineageIndex(location, schema_version=schema_version)
            if backend == "postgres" else
            SqliteLineageIndex(location, schema_version=schema_version))
        opened.append(index)
        return index

    yield open_at
    for index in opened:
        index.close()


@pytest.fixture
def index(open_index: IndexFactory, new_location: Callable[[], str]) -> SqlLineageIndex:
    return open_index(new_location())
