"""Ingesting the output topic into the event store, on a real Kafka broker and the real
stores: every scored event is stored once, nothing is committed before the store took it,
and nothing on the topic stops ingestion."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from agogosml.errors import StoreUnavailableError
from agogosml.localstack.broker import KafkaBroker
from agogosml.monitor.ingest import Ingestor
from agogosml.monitor.store import AsyncEventStore
from agogosml.monitor.store.base import ScoredEvent as StoredEvent
from agogosml.monitor.store.base import SqlEventStore
from agogosml.retry import Backoff
from agogosml.streaming.kafka import KafkaSource
from tests.kafka_helpers import (
    committed_offsets,
    create_topics,
    group_caught_up,
    produce,
    produce_json,
    wait_for,
)
from tests.monitor.conftest import StoreFactory

FAST = Backoff(initial_s=0.01, max_s=0.05)


def scored(event_id: str, prediction: Any = 1) -> dict[str, Any]:
    return {"id": event_id, "time": 1_700_000_000_000, "subject": "s-1",
            "model": {"name": "demo", "version": "3"}, "prediction": prediction,
            "scores": {"0": 0.25, "1": 0.75}, "scored_at": 1_700_000_000_050,
            "features": {"amount": 12.5, "channel": "online"}}


class FlakyStore:
    """The real store behind a switch that makes it refuse writes, as a store that is
    briefly down does."""

    def __init__(self, store: SqlEventStore) -> None:
        self.store = store
        self.down = True
        self.refused = 0

    def insert_events(self, events: list[StoredEvent]) -> int:
        if self.down:
            self.refused += 1
            raise OSError("store down")
        return self.store.insert_events(events)


async def run_until(ingestor: Ingestor, condition: Callable[[], Any], what: str) -> None:
    task = asyncio.create_task(ingestor.run())
    try:
        await wait_for(condition, 60, what)
    finally:
        ingestor.stop()
        await task


@pytest.fixture
def store(make_store: StoreFactory, new_location: Callable[[], str]) -> SqlEventStore:
    return make_store(new_location())


async def test_every_scored_event_is_stored_once_and_then_committed(
        kafka: KafkaBroker, topic_prefix: str, store: SqlEventStore) -> None:
    topic, group = f"{topic_prefix}.output", f"{topic_prefix}-monitor"
    await create_topics(kafka.bootstrap, [topic])
    items = [scored(f"e{n}", n % 2) for n in range(300)]
    await produce_json(kafka.bootstrap, topic, [*items, items[0], items[1]])  # redelivered
    await produce(kafka.bootstrap, topic, [b"{not json", b'{"id": "no model"}'])
    source = KafkaSource(topic, group, {"bootstrap_servers": kafka.bootstrap})
    await source.start()
    ingestor = Ingestor(source, AsyncEventStore(store), FAST, batch_max=50)
    try:
        async def done() -> bool:
            return await group_caught_up(kafka.bootstrap, group, topic)

        await run_until(ingestor, done, "every record committed")
    finally:
        await source.stop()
    page = store.events(0, 2**62, limit=1_000)
    assert sorted(event.event_id for event in page.events) == sorted(i["id"] for i in items)
    stored = next(event for event in page.events if event.event_id == "e7")
    assert (stored.model_version, stored.prediction, stored.subject) == ("3", 1, "s-1")
    assert stored.features == {"amount": 12.5, "channel": "online"}
    assert ingestor.counts.skipped == 2
    assert ingestor.counts.stored == 300


async def test_nothing_is_committed_while_the_store_is_down(
        kafka: KafkaBroker, topic_prefix: str, store: SqlEventStore) -> None:
    topic, group = f"{topic_prefix}.output", f"{topic_prefix}-monitor"
    await create_topics(kafka.bootstrap, [topic], partitions=1)
    await produce_json(kafka.bootstrap, topic, [scored(f"d{n}") for n in range(20)])
    flaky = FlakyStore(store)
    source = KafkaSource(topic, group, {"bootstrap_servers": kafka.bootstrap})
    await source.start()
    ingestor = Ingestor(source, AsyncEventStore(flaky), FAST)  # type: ignore[arg-type]
    try:
        task = asyncio.create_task(ingestor.run())

        async def refused_a_few() -> bool:
            return flaky.refused >= 5

        await wait_for(refused_a_few, 30, "the store refusing writes")
        assert await committed_offsets(kafka.bootstrap, group, topic) in ({}, {0: -1})
        assert store.events(0, 2**62).events == []
        flaky.down = False

        async def done() -> bool:
            return await group_caught_up(kafka.bootstrap, group, topic)

        await wait_for(done, 60, "the batch stored and committed once the store is back")
        ingestor.stop()
        await task
    finally:
        await source.stop()
    assert len(store.events(0, 2**62, limit=100).events) == 20
    assert ingestor.counts.store_failures >= 5


async def test_stopping_while_the_store_is_down_commits_nothing(
        kafka: KafkaBroker, topic_prefix: str, store: SqlEventStore) -> None:
    topic, group = f"{topic_prefix}.output", f"{topic_prefix}-monitor"
    await create_topics(kafka.bootstrap, [topic], partitions=1)
    await produce_json(kafka.bootstrap, topic, [scored("x")])
    flaky = FlakyStore(store)
    source = KafkaSource(topic, group, {"bootstrap_servers": kafka.bootstrap})
    await source.start()
    ingestor = Ingestor(source, AsyncEventStore(flaky), FAST)  # type: ignore[arg-type]
    try:
        ingestor.stop()  # stopping already: the first refusal ends the attempt

        async def until_the_record_is_refused() -> None:
            while not await ingestor.ingest_once():  # each call waits up to 0.5 s
                pass

        with pytest.raises(StoreUnavailableError):
            await asyncio.wait_for(until_the_record_is_refused(), 60)
    finally:
        await source.stop()
    assert await committed_offsets(kafka.bootstrap, group, topic) in ({}, {0: -1})


async def test_an_event_no_store_can_hold_is_skipped_not_retried_for_ever(
        kafka: KafkaBroker, topic_prefix: str, store: SqlEventStore) -> None:
    """PostgreSQL text cannot hold NUL; the writer accepts such an id. Retrying it would
    wedge ingestion, so it is skipped and counted on every backend alike."""
    topic, group = f"{topic_prefix}.output", f"{topic_prefix}-monitor"
    await create_topics(kafka.bootstrap, [topic], partitions=1)
    await produce_json(kafka.bootstrap, topic, [scored("a\x00b"), scored("fine")])
    source = KafkaSource(topic, group, {"bootstrap_servers": kafka.bootstrap})
    await source.start()
    ingestor = Ingestor(source, AsyncEventStore(store), FAST)
    try:
        async def done() -> bool:
            return await group_caught_up(kafka.bootstrap, group, topic)

        await run_until(ingestor, done, "both records committed")
    finally:
        await source.stop()
    assert [event.event_id for event in store.events(0, 2**62).events] == ["fine"]
    assert (ingestor.counts.skipped, ingestor.counts.store_failures) == (1, 0)
