"""The event store's behaviour, the same on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import pytest

from agogosml.monitor.store import (
    AsyncEventStore,
    Erased,
    Firing,
    Label,
    Page,
    Retention,
    ScoredEvent,
    WindowCount,
)
from agogosml.monitor.store.base import SqlEventStore

MINUTE = 60_000
HOUR = 60 * MINUTE
T0 = 1_767_225_600_000  # 2026-01-01T00:00Z, a whole hour


def event(event_id: str, time_ms: int, *, version: str = "1", prediction: object = 0,
          scores: object = None, features: object = None) -> ScoredEvent:
    return ScoredEvent(
        event_id=event_id, subject=f"card-{event_id}", event_time_ms=time_ms,
        scored_at_ms=time_ms + 5, model_name="demo", model_version=version,
        prediction=prediction,
        scores={"0": 0.25, "1": 0.75} if scores is None else scores,
        features={"amount": 12.5, "country": "NG"} if features is None else features,
        ingested_at_ms=time_ms + 9)


def test_a_new_store_is_at_the_current_schema_version(store: SqlEventStore) -> None:
    assert store.schema_version() == 3


def test_events_read_back_as_stored(store: SqlEventStore) -> None:
    stored = [event("a", T0, features={"nested": {"list": [1, 2.5, None, "ü"]}}),
              event("b", T0 + 1, prediction="fraud", scores=[0.1, 0.9])]
    assert store.insert_events(stored) == 2
    assert store.events(T0, T0 + MINUTE).events == stored


def test_a_redelivered_event_is_not_stored_twice(store: SqlEventStore) -> None:
    batch = [event("a", T0), event("b", T0 + 1)]
    assert store.insert_events(batch) == 2
    assert store.insert_events([*batch, event("c", T0 + 2)]) == 1
    assert store.insert_events([event("d", T0 + 3), event("d", T0 + 3)]) == 1
    assert [e.event_id for e in store.events(T0, T0 + MINUTE).events] == ["a", "b", "c", "d"]
    assert sum(c.count for c in store.counts(T0, T0 + MINUTE, MINUTE)) == 4


def test_the_same_event_scored_by_two_versions_is_kept_per_version(
        store: SqlEventStore) -> None:
    assert store.insert_events([event("a", T0, version="1"), event("a", T0, version="2")]) == 2
    assert [e.model_version for e in store.events(T0, T0 + 1).events] == ["1", "2"]


def test_events_filter_by_time_version_and_prediction(store: SqlEventStore) -> None:
    store.insert_events([event("a", T0, prediction=0), event("b", T0 + 10, prediction=1),
                         event("c", T0 + 20, version="2", prediction=1),
                         event("d", T0 + 30, prediction={"class": 1, "p": 0.5})])
    def ids(page: Page) -> list[str]:
        return [e.event_id for e in page.events]

    assert ids(store.events(T0 + 10, T0 + 30)) == ["b", "c"]
    assert ids(store.events(T0, T0 + 40, model_version="1")) == ["a", "b", "d"]
    assert ids(store.events(T0, T0 + 40, prediction=1)) == ["b", "c"]
    assert ids(store.events(T0, T0 + 40, model_version="2", prediction=1)) == ["c"]
    assert ids(store.events(T0, T0 + 40, prediction={"p": 0.5, "class": 1})) == ["d"]


def test_the_cursor_pages_through_every_event_once(store: SqlEventStore) -> None:
    # Ties in event time are ordered by id and version, so no page repeats or skips one.
    stored = [event(f"e{i:03}", T0 + i // 4, version=str(i % 2)) for i in range(53)]
    store.insert_events(stored)
    seen: list[ScoredEvent] = []
    page = store.events(T0, T0 + HOUR, limit=10)
    pages = 1
    while page.cursor is not None:
        seen.extend(page.events)
        page = store.events(T0, T0 + HOUR, limit=10, cursor=page.cursor)
        pages += 1
    seen.extend(page.events)
    assert pages == 6
    assert sorted(seen, key=lambda e: e.event_id) == stored


def test_counts_per_window_version_and_prediction(store: SqlEventStore) -> None:
    store.insert_events([event("a", T0, prediction=0), event("b", T0 + 59_999, prediction=0),
                         event("c", T0 + MINUTE, prediction=1),
                         event("d", T0 + MINUTE + 1, version="2", prediction=1)])
    assert store.counts(T0, T0 + HOUR, MINUTE) == [
        WindowCount(T0, "1", 0, 2), WindowCount(T0 + MINUTE, "1", 1, 1),
        WindowCount(T0 + MINUTE, "2", 1, 1)]
    assert store.counts(T0, T0 + HOUR, HOUR, model_version="1") == [
        WindowCount(T0, "1", 0, 2), WindowCount(T0, "1", 1, 1)]


def test_compaction_folds_old_events_into_rollups_that_counts_still_read(
        make_store: Callable[..., SqlEventStore], new_location: Callable[[], str]) -> None:
    store = make_store(new_location(), retention=Retention(raw_ms=HOUR, window_ms=MINUTE))
    old = [event("a", T0, prediction=0, scores={"0": 0.8, "1": 0.2}),
           event("b", T0 + 30_000, prediction=0, scores={"0": 0.6, "1": 0.4}),
           event("c", T0 + MINUTE, prediction=1, scores=[0.1, 0.9])]
    recent = [event("d", T0 + 2 * HOUR, prediction=1)]
    store.insert_events([*old, *recent])
    store.add_labels([Label("a", 0, T0 + 5), Label("d", 1, T0 + 2 * HOUR)])
    before = store.counts(T0, T0 + 3 * HOUR, HOUR)

    assert store.compact(now_ms=T0 + 3 * HOUR) == 3
    assert [e.event_id for e in store.events(T0, T0 + 3 * HOUR).events] == ["d"]
    rollups = store.rollups(T0, T0 + 3 * HOUR)
    assert [(r.window_start_ms, r.prediction, r.count) for r in rollups] == [
        (T0, 0, 2), (T0 + MINUTE, 1, 1)]
    assert rollups[0].mean_scores == pytest.approx({"0": 0.7, "1": 0.3})
    assert rollups[1].mean_scores == pytest.approx({"0": 0.1, "1": 0.9})
    assert store.counts(T0, T0 + 3 * HOUR, HOUR) == before
    # The compacted event's label went with it; the recent one's stays.
    assert [p.event.event_id for p in store.labelled("1", T0, T0 + 3 * HOUR)] == ["d"]
    # Compacting again folds nothing; a later compaction adds to the same rollup.
    assert store.compact(now_ms=T0 + 3 * HOUR) == 0
    store.insert_events([event("e", T0 + 1, prediction=0, scores={"0": 1.0, "1": 0.0})])
    assert store.compact(now_ms=T0 + 3 * HOUR) == 1
    [first, _] = store.rollups(T0, T0 + 3 * HOUR)
    assert first.count == 3
    assert first.mean_scores == pytest.approx({"0": 0.8, "1": 0.2})
    with pytest.raises(ValueError, match="multiple"):
        store.counts(T0, T0 + 3 * HOUR, 1_000)


def test_compaction_keeps_what_is_within_retention(
        make_store: Callable[..., SqlEventStore], new_location: Callable[[], str]) -> None:
    store = make_store(new_location(), retention=Retention(raw_ms=HOUR, window_ms=HOUR))
    store.insert_events([event("a", T0), event("b", T0 + HOUR - 1), event("c", T0 + HOUR)])
    # The cut is at a window boundary: T0 + 2h - 1ms - 1h, rounded down to T0 + 0h.
    assert store.compact(now_ms=T0 + 2 * HOUR - 1) == 0
    assert store.compact(now_ms=T0 + 2 * HOUR) == 2
    assert [e.event_id for e in store.events(T0, T0 + 2 * HOUR).events] == ["c"]


def test_late_labels_join_predictions_by_event_id(store: SqlEventStore) -> None:
    store.insert_events([event("a", T0, prediction=1), event("b", T0 + 1, prediction=0),
                         event("c", T0 + 2, prediction=1),
                         event("a", T0, version="2", prediction=0)])
    store.add_labels([Label("a", 1, T0 + HOUR), Label("c", 0, T0 + HOUR),
                      Label("unknown", 1, T0 + HOUR)])
    store.add_labels([Label("c", 1, T0 + 2 * HOUR)])  # a correction replaces the label
    joined = store.labelled("1", T0, T0 + MINUTE)
    assert [(p.event.event_id, p.event.prediction, p.label, p.label_arrived_at_ms)
            for p in joined] == [("a", 1, 1, T0 + HOUR), ("c", 1, 1, T0 + 2 * HOUR)]
    assert [(p.event.event_id, p.event.prediction) for p in store.labelled("2", T0, T0 + 1)] == [
        ("a", 0)]
    assert store.labelled("1", T0 + 1, T0 + 2) == []
    # A limit keeps the latest, still in event time order.
    assert [p.event.event_id for p in store.labelled("1", T0, T0 + MINUTE, limit=1)] == ["c"]


def test_forgetting_a_subject_deletes_their_events_and_labels_only(
        store: SqlEventStore) -> None:
    store.insert_events([event("a", T0), event("a", T0, version="2"), event("b", T0 + 1)])
    store.add_labels([Label("a", 1, T0 + HOUR), Label("b", 0, T0 + HOUR)])
    assert store.forget_subject("card-a") == Erased(events=2, labels=1)
    assert [e.event_id for e in store.events(T0, T0 + MINUTE).events] == ["b"]
    assert [p.event.event_id for p in store.labelled("1", T0, T0 + MINUTE)] == ["b"]
    assert store.counts(T0, T0 + MINUTE, MINUTE)[0].count == 1
    assert store.forget_subject("card-a") == Erased(events=0, labels=0)  # idempotent


def test_trigger_firings_are_kept_with_their_evidence(store: SqlEventStore) -> None:
    first = store.record_firing(Firing("psi-amount", T0, {"psi": 0.31, "window": "1h"},
                                       "retrain", "accepted"))
    second = store.record_firing(Firing("auc-drop", T0 + 5, {"auc": 0.61}, "notify", "sent"))
    store.record_firing(Firing("psi-amount", T0 + HOUR, {}, "retrain", "cool-down"))
    assert second > first
    assert store.firings(T0, T0 + MINUTE) == [
        Firing("psi-amount", T0, {"psi": 0.31, "window": "1h"}, "retrain", "accepted", first),
        Firing("auc-drop", T0 + 5, {"auc": 0.61}, "notify", "sent", second)]
    assert [f.outcome for f in store.firings(T0, T0 + 2 * HOUR, rule="psi-amount")] == [
        "accepted", "cool-down"]


def test_writers_on_several_threads_lose_nothing(store: SqlEventStore) -> None:
    def write(worker: int) -> None:
        for batch in range(5):
            store.insert_events([event(f"w{worker}-{batch}-{i}", T0 + i) for i in range(20)])

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(c.count for c in store.counts(T0, T0 + HOUR, HOUR)) == 400


async def test_the_async_store_runs_off_the_event_loop(store: SqlEventStore) -> None:
    loop_thread = threading.get_ident()
    calls: list[int] = []
    original = store.insert_events

    def spy(events: Sequence[ScoredEvent]) -> int:
        calls.append(threading.get_ident())
        return original(events)

    store.insert_events = spy  # type: ignore[method-assign]
    async_store = AsyncEventStore(store)
    assert await async_store.insert_events([event("a", T0)]) == 1
    assert len(calls) == 1
    assert calls[0] != loop_thread
    assert [e.event_id for e in (await async_store.events(T0, T0 + 1)).events] == ["a"]
    assert await async_store.counts(T0, T0 + 1, MINUTE) == [WindowCount(T0, "1", 0, 1)]
    await async_store.add_labels([Label("a", 1, T0 + 1)])
    assert [p.label for p in await async_store.labelled("1", T0, T0 + 1)] == [1]
    assert await async_store.record_firing(Firing("r", T0, {}, "notify", "sent")) >= 1
    assert await async_store.compact(T0) == 0
    assert await async_store.rollups(T0, T0 + 1) == []
    assert [f.rule for f in await async_store.firings(T0, T0 + 1)] == ["r"]


def test_retention_needs_a_positive_window() -> None:
    assert Retention().window_ms == MINUTE
    with pytest.raises(ValueError, match="window_ms > 0"):
        Retention(raw_ms=HOUR, window_ms=0)
    with pytest.raises(ValueError, match="raw_ms >= 0"):
        Retention(raw_ms=-1)
