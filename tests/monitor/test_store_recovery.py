"""A PostgreSQL store outlives its server's restart: the write under way when the server
went away fails (the monitor's ingest retries it, committing nothing meanwhile), and the
next one reconnects, so nothing needs the monitor restarted. A server of this test's own,
so restarting it cuts no other test's connections."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from agogosml.monitor.store import PostgresEventStore
from tests.monitor.postgres import PostgresServer, running_server
from tests.monitor.test_store import T0, event

pytestmark = pytest.mark.postgres


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    with running_server() as server:
        yield server


def test_the_store_reconnects_once_postgresql_is_back(own_server: PostgresServer) -> None:
    store = PostgresEventStore(own_server.create_database())
    try:
        assert store.insert_events([event("before", T0)]) == 1
        own_server.restart()
        with pytest.raises(psycopg.OperationalError):
            store.insert_events([event("during", T0 + 1)])
        assert store.insert_events([event("during", T0 + 1), event("after", T0 + 2)]) == 2
        assert [e.event_id for e in store.events(T0, T0 + 3).events] == [
            "before", "during", "after"]
        assert store.schema_version() > 0
    finally:
        store.close()
