"""EventHubSource and EventHubSink against fakes of the SDK's clients.

The fakes stand where azure.eventhub.aio's clients stand: the consumer calls back with
real EventData through real PartitionContexts, whose update_checkpoint writes into an
in-memory CheckpointStore, and starts each partition after its checkpoint like the SDK
does; the producer hands out real, size-limited EventDataBatch objects.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from azure.eventhub import CloseReason, EventData, EventDataBatch
from azure.eventhub.aio import CheckpointStore, EventHubConsumerClient, PartitionContext
from azure.eventhub.amqp import AmqpAnnotatedMessage
from azure.eventhub.exceptions import EventHubError

from agogosml.errors import DownstreamError, RecordTooLargeError, SinkError
from agogosml.streaming.base import OutRecord, Position, SourceRecord
from agogosml.streaming.eventhubs import (
    EventHubSink,
    EventHubSource,
    OnError,
    OnEventBatch,
    OnPartitionClose,
    OnPartitionInitialize,
)

NAMESPACE = "fake.servicebus.windows.net"
HUB = "telemetry"
GROUP = "$Default"
ENQUEUED_MS = 1_700_000_000_000
WAIT_S = 5.0


class MemoryCheckpointStore(CheckpointStore):
    """The SDK's checkpoint store interface, kept in a dict."""

    def __init__(self) -> None:
        self.checkpoints: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self.ownership: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self.updates: list[tuple[str, int]] = []
        """(partition_id, sequence_number) of every checkpoint written, in order."""

    async def list_ownership(self, fully_qualified_namespace: str, eventhub_name: str,
                             consumer_group: str, **kwargs: Any) -> Iterable[dict[str, Any]]:
        scope = (fully_qualified_namespace, eventhub_name, consumer_group)
        return [dict(item) for key, item in self.ownership.items() if key[:3] == scope]

    async def claim_ownership(self, ownership_list: Iterable[dict[str, Any]],
                              **kwargs: Any) -> Iterable[dict[str, Any]]:
        claimed = []
        for item in ownership_list:
            record = dict(item, last_modified_time=datetime.now(UTC), etag=str(uuid.uuid4()))
            self.ownership[_store_key(record)] = record
            claimed.append(dict(record))
        return claimed

    async def update_checkpoint(self, checkpoint: dict[str, str | int | None],
                                **kwargs: Any) -> None:
        sequence_number = checkpoint["sequence_number"]
        assert isinstance(sequence_number, int)
        self.checkpoints[_store_key(checkpoint)] = dict(checkpoint)
        self.updates.append((str(checkpoint["partition_id"]), sequence_number))

    async def list_checkpoints(self, fully_qualified_namespace: str, eventhub_name: str,
                               consumer_group: str, **kwargs: Any) -> Iterable[dict[str, Any]]:
        scope = (fully_qualified_namespace, eventhub_name, consumer_group)
        return [dict(item) for key, item in self.checkpoints.items() if key[:3] == scope]


def _store_key(item: Mapping[str, Any]) -> tuple[str, str, str, str]:
    return (item["fully_qualified_namespace"], item["eventhub_name"], item["consumer_group"],
            item["partition_id"])


def received(body: bytes, sequence_number: int, partition_key: bytes | None = None) -> EventData:
    """An EventData as the SDK hands it to a receive callback, service annotations included."""
    event = EventData(body)
    annotations = event.raw_amqp_message.annotations
    assert annotations is not None
    annotations[b"x-opt-sequence-number"] = sequence_number
    annotations[b"x-opt-offset"] = str(4096 + 64 * sequence_number).encode()
    annotations[b"x-opt-enqueued-time"] = ENQUEUED_MS + sequence_number
    if partition_key is not None:
        annotations[b"x-opt-partition-key"] = partition_key
    return event


def numbered(count: int, first: int = 0) -> list[EventData]:
    return [received(f"event-{n}".encode(), n) for n in range(first, first + count)]


class FakeConsumerClient:
    """receive_batch like EventHubConsumerClient's with a checkpoint store: one task per
    partition, each starting after the partition's checkpoint (else at starting_position),
    calling back with batches and then waiting for more until the client is closed."""

    def __init__(self, partitions: Mapping[str, Sequence[EventData]],
                 store: CheckpointStore) -> None:
        self.partitions = partitions
        self.store = store
        self.unreachable = False
        self.callbacks_started = 0
        self.callbacks_returned = 0
        self._progress = asyncio.Condition()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = asyncio.Event()

    @property
    def eventhub_name(self) -> str:
        return HUB

    async def receive_batch(
        self,
        on_event_batch: OnEventBatch,
        *,
        max_batch_size: int = 300,
        starting_position: str | None = None,
        on_error: OnError | None = None,
        on_partition_initialize: OnPartitionInitialize | None = None,
        on_partition_close: OnPartitionClose | None = None,
    ) -> None:
        await self.store.claim_ownership([
            {"fully_qualified_namespace": NAMESPACE, "eventhub_name": HUB,
             "consumer_group": GROUP, "partition_id": partition_id, "owner_id": "fake"}
            for partition_id in self.partitions
        ])
        checkpoints = {
            item["partition_id"]: int(item["sequence_number"])
            for item in await self.store.list_checkpoints(NAMESPACE, HUB, GROUP)
        }

        async def consume(partition_id: str, events: Sequence[EventData]) -> None:
            context = PartitionContext(NAMESPACE, HUB, GROUP, partition_id, self.store)
            if on_partition_initialize is not None:
                await on_partition_initialize(context)
            try:
                if partition_id in checkpoints:
                    after = checkpoints[partition_id]
                    pending = [e for e in events if (e.sequence_number or 0) > after]
                else:
                    pending = list(events) if starting_position == "-1" else []
                for start in range(0, len(pending), max_batch_size):
                    await self._count("callbacks_started")
                    await on_event_batch(context, pending[start:start + max_batch_size])
                    await self._count("callbacks_returned")
                await asyncio.Event().wait()
            finally:
                if on_partition_close is not None:
                    await on_partition_close(context, CloseReason.SHUTDOWN)

        self._tasks = [asyncio.create_task(consume(partition_id, events))
                       for partition_id, events in self.partitions.items()]
        await self._closed.wait()

    async def _count(self, counter: str) -> None:
        async with self._progress:
            setattr(self, counter, getattr(self, counter) + 1)
            self._progress.notify_all()

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT_S), self._progress:
            await self._progress.wait_for(condition)

    async def get_partition_ids(self) -> list[str]:
        if self.unreachable:
            raise EventHubError("the namespace cannot be reached")
        return list(self.partitions)

    async def get_partition_properties(self, partition_id: str) -> dict[str, Any]:
        events = self.partitions[partition_id]
        return {"eventhub_name": HUB, "id": partition_id,
                "last_enqueued_sequence_number": events[-1].sequence_number}

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._closed.set()


class RecordingBatch(EventDataBatch):
    def __init__(self, max_size_in_bytes: int, partition_key: str | None) -> None:
        super().__init__(max_size_in_bytes=max_size_in_bytes, partition_key=partition_key)
        self.partition_key = partition_key
        self.events: list[EventData] = []

    def add(self, event_data: EventData | AmqpAnnotatedMessage) -> None:
        super().add(event_data)
        assert isinstance(event_data, EventData)
        self.events.append(event_data)


class FakeProducerClient:
    def __init__(self, max_batch_bytes: int = 1024 * 1024) -> None:
        self.max_batch_bytes = max_batch_bytes
        self.sent: list[RecordingBatch] = []
        self.failure: Exception | None = None

    async def create_batch(self, *, partition_key: str | None = None) -> EventDataBatch:
        return RecordingBatch(self.max_batch_bytes, partition_key)

    async def send_batch(self, event_data_batch: EventDataBatch, *,
                         timeout: float | None = None) -> None:  # noqa: ASYNC109
        if self.failure is not None:
            raise self.failure
        assert isinstance(event_data_batch, RecordingBatch)
        self.sent.append(event_data_batch)

    async def get_eventhub_properties(self) -> dict[str, Any]:
        if self.failure is not None:
            raise self.failure
        return {"eventhub_name": HUB, "partition_ids": ["0", "1"]}

    async def close(self) -> None:
        return None


async def fetch_exactly(source: EventHubSource, count: int) -> list[SourceRecord]:
    records: list[SourceRecord] = []
    async with asyncio.timeout(WAIT_S):
        while len(records) < count:
            records.extend(await source.fetch(count - len(records), 0.1))
    return records


def by_partition(records: Iterable[SourceRecord]) -> dict[str, list[SourceRecord]]:
    grouped: dict[str, list[SourceRecord]] = {}
    for record in records:
        grouped.setdefault(record.position.partition, []).append(record)
    return grouped


@pytest.fixture
def store() -> MemoryCheckpointStore:
    return MemoryCheckpointStore()


async def test_records_carry_the_event_bytes_and_positions_in_order(
        store: MemoryCheckpointStore) -> None:
    client = FakeConsumerClient({
        "0": [received(b"\xff\x00 not utf-8", 100, partition_key=b"device-7"),
              received(b'{"t": 21.5}', 101)],
        "1": [received(b"", 7)],
    }, store)
    source = EventHubSource(client, queue_size=8)
    await source.start()

    records = by_partition(await fetch_exactly(source, 3))
    await source.stop()

    assert records["0"] == [
        SourceRecord(b"\xff\x00 not utf-8", Position(HUB, "0", 100), ENQUEUED_MS + 100,
                     key=b"device-7"),
        SourceRecord(b'{"t": 21.5}', Position(HUB, "0", 101), ENQUEUED_MS + 101),
    ]
    assert records["1"] == [SourceRecord(b"", Position(HUB, "1", 7), ENQUEUED_MS + 7)]


async def test_commit_checkpoints_exactly_the_events_done_per_partition(
        store: MemoryCheckpointStore) -> None:
    client = FakeConsumerClient({"0": numbered(5), "1": numbered(5, first=10)}, store)
    source = EventHubSource(client)
    await source.start()
    await fetch_exactly(source, 10)

    await source.commit({(HUB, "0"): 2, (HUB, "1"): 14})
    assert store.updates == [("0", 2), ("1", 14)]
    checkpoint = store.checkpoints[(NAMESPACE, HUB, GROUP, "0")]
    assert (checkpoint["sequence_number"], checkpoint["offset"]) == (2, str(4096 + 64 * 2))

    # Repeated, older, foreign or unknown positions write nothing.
    await source.commit({(HUB, "0"): 2, (HUB, "1"): 12, ("other-hub", "0"): 4, (HUB, "9"): 1})
    assert store.updates == [("0", 2), ("1", 14)]

    await source.commit({(HUB, "0"): 4})
    assert store.updates == [("0", 2), ("1", 14), ("0", 4)]
    await source.stop()


async def test_a_restarted_source_resumes_after_the_checkpoint(
        store: MemoryCheckpointStore) -> None:
    events = {"0": numbered(10)}
    first = EventHubSource(FakeConsumerClient(events, store), queue_size=4)
    await first.start()
    done = await fetch_exactly(first, 4)
    await first.commit({(HUB, "0"): done[2].position.offset})
    await first.stop()

    second = EventHubSource(FakeConsumerClient(events, store), queue_size=4)
    await second.start()
    rest = await fetch_exactly(second, 7)
    await second.stop()

    assert [r.position.offset for r in done[:3]] == [0, 1, 2]
    assert [r.position.offset for r in rest] == [3, 4, 5, 6, 7, 8, 9]
    assert [r.value for r in rest] == [f"event-{n}".encode() for n in range(3, 10)]


async def test_a_slow_fetcher_blocks_the_sdk_callback_instead_of_buffering(
        store: MemoryCheckpointStore) -> None:
    client = FakeConsumerClient({"0": numbered(50)}, store)
    source = EventHubSource(client, queue_size=3, max_batch_size=1)
    await source.start()

    # Three events fill the queue; the fourth callback waits for room.
    await client.wait_until(lambda: client.callbacks_started == 4)
    # Nothing fetches, so however often the loop turns, no callback may get further.
    for _ in range(100):
        await asyncio.sleep(0)
    assert (client.callbacks_started, client.callbacks_returned) == (4, 3)

    assert len(await source.fetch(1, WAIT_S)) == 1
    await client.wait_until(lambda: client.callbacks_started == 5)
    assert client.callbacks_returned == 4

    rest = await fetch_exactly(source, 49)
    await source.stop()
    assert [r.position.offset for r in rest] == list(range(1, 50))


async def test_a_paused_source_hands_out_nothing_until_resumed(
        store: MemoryCheckpointStore) -> None:
    client = FakeConsumerClient({"0": numbered(3)}, store)
    source = EventHubSource(client)
    await source.start()
    await client.wait_until(lambda: client.callbacks_returned == 1)

    source.pause()
    assert await source.fetch(10, 0.05) == []
    source.resume()
    records = await source.fetch(10, WAIT_S)
    await source.stop()

    assert [r.position.offset for r in records] == [0, 1, 2]


async def test_stop_runs_the_drain_hook_while_the_partition_can_still_be_checkpointed(
        store: MemoryCheckpointStore) -> None:
    client = FakeConsumerClient({"0": numbered(3), "1": numbered(2)}, store)
    source = EventHubSource(client)
    records: list[SourceRecord] = []
    drained = 0

    async def drain() -> None:
        nonlocal drained
        drained += 1
        await source.commit({(HUB, r.position.partition): r.position.offset for r in records})

    source.set_drain_hook(drain)
    await source.start()
    records = await fetch_exactly(source, 5)
    await source.stop()

    assert drained == 2  # once per closed partition
    assert sorted(store.updates) == [("0", 2), ("1", 1)]


async def test_readiness_follows_the_receiver_and_the_namespace(
        store: MemoryCheckpointStore) -> None:
    client = FakeConsumerClient({"0": numbered(1)}, store)
    source = EventHubSource(client)
    assert not await source.is_ready()

    await source.start()
    assert await source.is_ready()
    client.unreachable = True
    assert not await source.is_ready()
    client.unreachable = False

    await source.stop()
    assert not await source.is_ready()


async def test_lag_counts_the_events_behind_the_last_one_fetched(
        store: MemoryCheckpointStore) -> None:
    client = FakeConsumerClient({"0": numbered(10), "1": numbered(4)}, store)
    source = EventHubSource(client, queue_size=3, max_batch_size=1)
    await source.start()
    fetched = by_partition(await fetch_exactly(source, 3))
    lags = await source.lag()
    await source.stop()

    for partition, records in fetched.items():
        last = records[-1].position.offset
        expected = len(client.partitions[partition]) - 1 - last
        assert lags[(HUB, partition)] == expected
    assert set(lags) == {(HUB, partition) for partition in fetched}


async def test_source_factory_builds_the_sdk_client_with_the_checkpoint_store(
        store: MemoryCheckpointStore) -> None:
    connection = f"Endpoint=sb://{NAMESPACE}/;SharedAccessKeyName=k;SharedAccessKey=c2VjcmV0"
    source = EventHubSource.from_connection_string(connection, HUB, GROUP, store)

    assert isinstance(source.client, EventHubConsumerClient)
    assert source.stream == HUB
    assert source.client._checkpoint_store is store
    await source.client.close()


def out(value: bytes, key: bytes | None = None) -> OutRecord:
    return OutRecord(value, key=key, headers=(("trace", b"t-" + value[:4]),))


def sent_values(producer: FakeProducerClient) -> list[bytes]:
    return [b"".join(cast(Iterable[bytes], event.body))
            for batch in producer.sent for event in batch.events]


async def test_the_sink_starts_a_new_batch_when_one_is_full() -> None:
    producer = FakeProducerClient(max_batch_bytes=400)
    sink = EventHubSink(producer)
    records = [out(f"{n:03d}".encode() * 30) for n in range(10)]

    await sink.send(records)

    assert len(producer.sent) > 1
    assert all(batch.size_in_bytes <= 400 for batch in producer.sent)
    assert sent_values(producer) == [r.value for r in records]
    first_event = producer.sent[0].events[0]
    assert first_event.properties == {"trace": b"t-0000"}


async def test_the_sink_keeps_keyed_records_in_batches_with_their_partition_key() -> None:
    producer = FakeProducerClient()
    sink = EventHubSink(producer)

    await sink.send([out(b"a1", b"a"), out(b"a2", b"a"), out(b"b1", b"b"), out(b"n1")])

    assert [(batch.partition_key, len(batch)) for batch in producer.sent] == [
        ("a", 2), ("b", 1), (None, 1),
    ]
    assert sent_values(producer) == [b"a1", b"a2", b"b1", b"n1"]


async def test_a_refused_batch_raises_sink_error_without_the_payload() -> None:
    producer = FakeProducerClient()
    producer.failure = EventHubError("link detached")
    sink = EventHubSink(producer)

    with pytest.raises(SinkError) as raised:
        await sink.send([out(b"card=4111-1111")])

    assert "4111" not in str(raised.value)
    assert isinstance(raised.value.__cause__, EventHubError)
    assert not await sink.is_ready()


async def test_a_record_larger_than_any_batch_is_refused_not_retried() -> None:
    producer = FakeProducerClient(max_batch_bytes=200)
    sink = EventHubSink(producer)

    with pytest.raises(RecordTooLargeError, match="300 bytes") as refused:
        await sink.send([out(b"small"), out(b"x" * 300)])
    assert not isinstance(refused.value, DownstreamError), "retrying could never succeed"

    assert await sink.is_ready()
