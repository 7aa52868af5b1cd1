"""Opening an older store migrates it; the migrations are numbered and applied in order."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from agogosml.monitor.store import CURRENT_VERSION, MIGRATIONS, Firing, Label, Retention
from agogosml.monitor.store.base import SqlEventStore
from agogosml.sqldb.schema import SchemaTooNewError
from tests.monitor.test_store import HOUR, MINUTE, T0, event

Factory = Callable[..., SqlEventStore]


def test_migrations_are_numbered_one_by_one() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert MIGRATIONS[-1].version == CURRENT_VERSION


def test_a_version_1_store_is_migrated_when_opened_with_its_data_kept(
        make_store: Factory, new_location: Callable[[], str]) -> None:
    location = new_location()
    old = make_store(location, schema_version=1)
    assert old.schema_version() == 1
    old.insert_events([event("a", T0, prediction=1), event("b", T0 + 1)])
    old.add_labels([Label("a", 1, T0 + HOUR)])
    old.record_firing(Firing("rule", T0, {"psi": 0.4}, "notify", "sent"))
    with pytest.raises(Exception, match="rollups"):
        old.rollups(T0, T0 + HOUR)  # version 1 has no rollups table
    old.close()

    current = make_store(location, retention=Retention(raw_ms=HOUR, window_ms=MINUTE))
    assert current.schema_version() == CURRENT_VERSION
    assert [e.event_id for e in current.events(T0, T0 + MINUTE).events] == ["a", "b"]
    assert [p.label for p in current.labelled("1", T0, T0 + MINUTE)] == [1]
    assert [f.evidence for f in current.firings(T0, T0 + 1)] == [{"psi": 0.4}]
    assert current.compact(now_ms=T0 + 2 * HOUR) == 2
    assert sum(r.count for r in current.rollups(T0, T0 + HOUR)) == 2
    # Reopening an up-to-date store changes nothing.
    again = make_store(location)
    assert again.schema_version() == CURRENT_VERSION
    assert sum(c.count for c in again.counts(T0, T0 + HOUR, HOUR)) == 2


def test_a_store_newer_than_the_code_is_refused(
        make_store: Factory, new_location: Callable[[], str]) -> None:
    location = new_location()
    store = make_store(location)
    with store._transaction() as cursor:
        cursor.execute(store._sql("INSERT INTO schema_version (version, name, applied_at_ms) "
                                  "VALUES (?, ?, ?)"), (CURRENT_VERSION + 1, "future", T0))
    with pytest.raises(SchemaTooNewError, match="newer than this code"):
        make_store(location)
