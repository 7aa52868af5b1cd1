"""Azure Event Hubs source and sink on azure-eventhub v5 (async), without the Kafka endpoint.

The SDK pushes where the pipeline pulls: `receive_batch` runs until the client is
closed and calls back with each partition's events. EventHubSource runs it in a
background task whose callback awaits `put` on a bounded queue that `fetch` drains,
so a slow or paused reader blocks the callback, and with it the SDK's receiving,
instead of piling events up in memory. Each event handed out is kept, with the
PartitionContext it came with, until a `commit` covers it; `commit` then checkpoints
that very event through the SDK's CheckpointStore, from which the SDK resumes on
restart or when another instance takes the partition over.

EventHubSink packs records into size-limited batches and returns once the service
has accepted every batch.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

from azure.eventhub import CloseReason, EventData, EventDataBatch
from azure.eventhub.aio import (
    CheckpointStore,
    EventHubConsumerClient,
    EventHubProducerClient,
    PartitionContext,
)
from azure.eventhub.amqp import AmqpMessageBodyType
from azure.eventhub.exceptions import EventHubError

from agogosml.errors import ConfigurationError, RecordTooLargeError, SinkError
from agogosml.streaming.base import DrainHook, OutRecord, PartitionKey, Position, SourceRecord

if TYPE_CHECKING:
    from agogosml.settings import TransportSettings

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 3.0
DEFAULT_QUEUE_SIZE = 1000
DEFAULT_MAX_BATCH_SIZE = 300
FROM_THE_BEGINNING = "-1"
"""The SDK's starting position for partitions that have no checkpoint yet."""

OnEventBatch = Callable[[PartitionContext, list[EventData]], Awaitable[None]]
OnError = Callable[[PartitionContext, Exception], Awaitable[None]]
OnPartitionInitialize = Callable[[PartitionContext], Awaitable[None]]
OnPartitionClose = Callable[[PartitionContext, CloseReason], Awaitable[None]]


class ConsumerClient(Protocol):
    """What EventHubSource uses of azure.eventhub.aio.EventHubConsumerClient."""

    @property
    def eventhub_name(self) -> str: ...

    async def receive_batch(
        self,
        on_event_batch: OnEventBatch,
        *,
        max_batch_size: int = ...,
        starting_position: str | None = ...,
        on_error: OnError | None = ...,
        on_partition_initialize: OnPartitionInitialize | None = ...,
        on_partition_close: OnPartitionClose | None = ...,
    ) -> None: ...

    async def get_partition_ids(self) -> list[str]: ...

    async def get_partition_properties(self, partition_id: str) -> dict[str, Any]: ...

    async def close(self) -> None: ...


class ProducerClient(Protocol):
    """What EventHubSink uses of azure.eventhub.aio.EventHubProducerClient."""

    async def create_batch(self, *, partition_key: str | None = None) -> EventDataBatch: ...

    # The SDK's own timeout, not a cancellation, ends a send it cannot complete.
    async def send_batch(
        self, event_data_batch: EventDataBatch, *, timeout: float | None = None  # noqa: ASYNC109
    ) -> None: ...

    async def get_eventhub_properties(self) -> dict[str, Any]: ...

    async def close(self) -> None: ...


@dataclass(eq=False, slots=True)
class _Partition:
    """One ownership of a partition, from the SDK's initialize callback to its close callback."""

    context: PartitionContext
    handed_out: dict[int, EventData] = field(default_factory=dict)
    """Events fetched and not yet covered by a commit, by sequence number, in fetch order."""
    last_fetched: int | None = None

    def forget_through(self, sequence_number: int) -> None:
        while self.handed_out:
            oldest = next(iter(self.handed_out))
            if oldest > sequence_number:
                return
            del self.handed_out[oldest]


class EventHubSource:
    def __init__(self, consumer_client: ConsumerClient, *, queue_size: int = DEFAULT_QUEUE_SIZE,
                 max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
                 starting_position: str = FROM_THE_BEGINNING) -> None:
        if queue_size < 1:
            # asyncio.Queue(0) would be unbounded.
            raise ConfigurationError("the Event Hubs source needs a queue size of at least 1")
        self.client = consumer_client
        self.stream = consumer_client.eventhub_name
        self.max_batch_size = max_batch_size
        self.starting_position = starting_position
        self._queue: asyncio.Queue[tuple[_Partition, EventData]] = asyncio.Queue(queue_size)
        self._partitions: dict[str, _Partition] = {}
        self._not_paused = asyncio.Event()
        self._not_paused.set()
        self._drain_hook: DrainHook | None = None
        self._receiving: asyncio.Task[None] | None = None

    @classmethod
    def from_connection_string(cls, connection_string: str, eventhub_name: str,
                               consumer_group: str, checkpoint_store: CheckpointStore | None,
                               *, queue_size: int = DEFAULT_QUEUE_SIZE,
                               max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
                               starting_position: str = FROM_THE_BEGINNING) -> EventHubSource:
        if checkpoint_store is None:
            log.warning("no Event Hubs checkpoint store: progress is not saved, and a restart "
                        "reads every partition again from the starting position")
        client = EventHubConsumerClient.from_connection_string(
            connection_string, consumer_group,
            eventhub_name=eventhub_name, checkpoint_store=checkpoint_store,
        )
        return cls(client, queue_size=queue_size, max_batch_size=max_batch_size,
                   starting_position=starting_position)

    def set_drain_hook(self, hook: DrainHook) -> None:
        self._drain_hook = hook

    async def start(self) -> None:
        if self._receiving is None or self._receiving.done():
            self._receiving = asyncio.create_task(
                self._receive(), name=f"eventhubs-receive-{self.stream}"
            )
            self._receiving.add_done_callback(_log_if_failed)

    async def stop(self) -> None:
        # Closing the client closes every partition (the drain hook runs) and ends the
        # per-partition receivers; the load-balancing loop may still be asleep, hence the cancel.
        await self.client.close()
        if self._receiving is not None:
            self._receiving.cancel()
            await asyncio.wait({self._receiving})
            self._receiving = None
        self._partitions.clear()

    async def _receive(self) -> None:
        await self.client.receive_batch(
            self._on_event_batch,
            max_batch_size=self.max_batch_size,
            starting_position=self.starting_position,
            on_error=self._on_error,
            on_partition_initialize=self._on_partition_initialize,
            on_partition_close=self._on_partition_close,
        )

    async def _on_partition_initialize(self, context: PartitionContext) -> None:
        self._partitions[context.partition_id] = _Partition(context)
        log.info("partition assigned", extra={"stream": self.stream,
                                              "partition": context.partition_id})

    async def _on_partition_close(self, context: PartitionContext, reason: CloseReason) -> None:
        log.info("partition closed", extra={"stream": self.stream,
                                            "partition": context.partition_id,
                                            "reason": reason.name})
        try:
            if self._drain_hook is not None:
                await self._drain_hook()
        finally:
            self._partitions.pop(context.partition_id, None)

    async def _on_error(self, context: PartitionContext | None, error: Exception) -> None:
        partition = context.partition_id if context is not None else None
        log.warning("Event Hubs receive error", extra={"stream": self.stream,
                                                        "partition": partition,
                                                        "error": repr(error)})

    async def _on_event_batch(self, context: PartitionContext, events: list[EventData]) -> None:
        partition = self._partitions.get(context.partition_id)
        if partition is None:
            partition = self._partitions[context.partition_id] = _Partition(context)
        for event in events:
            await self._queue.put((partition, event))

    async def fetch(self, max_records: int, timeout_s: float) -> Sequence[SourceRecord]:
        records: list[SourceRecord] = []
        if max_records < 1:
            return records
        deadline = asyncio.get_running_loop().time() + timeout_s
        try:
            async with asyncio.timeout_at(deadline):
                await self._not_paused.wait()
                while not records:
                    self._hand_out(await self._queue.get(), records)
        except TimeoutError:
            return records
        while len(records) < max_records:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            self._hand_out(item, records)
        return records

    def _hand_out(self, item: tuple[_Partition, EventData], records: list[SourceRecord]) -> None:
        partition, event = item
        partition_id = partition.context.partition_id
        if self._partitions.get(partition_id) is not partition:
            return  # queued before its partition closed; the next owner reads it again
        sequence_number = cast(int, event.sequence_number)
        partition.handed_out[sequence_number] = event
        partition.last_fetched = sequence_number
        key = event.partition_key
        records.append(SourceRecord(
            value=_body_bytes(event),
            position=Position(self.stream, partition_id, sequence_number),
            timestamp_ms=_timestamp_ms(event),
            key=key.encode() if isinstance(key, str) else key,
        ))

    async def commit(self, last_done: Mapping[PartitionKey, int]) -> None:
        for (stream, partition_id), sequence_number in last_done.items():
            partition = self._partitions.get(partition_id)
            if stream != self.stream or partition is None:
                continue
            event = partition.handed_out.get(sequence_number)
            if event is None:
                continue  # already committed, or handed out before the partition changed hands
            await partition.context.update_checkpoint(event)
            partition.forget_through(sequence_number)

    def pause(self) -> None:
        self._not_paused.clear()

    def resume(self) -> None:
        self._not_paused.set()

    async def is_ready(self) -> bool:
        if self._receiving is None or self._receiving.done():
            return False
        try:
            partition_ids = await asyncio.wait_for(
                self.client.get_partition_ids(), READY_TIMEOUT_S
            )
        except (EventHubError, TimeoutError):
            return False
        return bool(partition_ids)

    async def lag(self) -> Mapping[PartitionKey, int]:
        lags: dict[PartitionKey, int] = {}
        for partition_id, partition in list(self._partitions.items()):
            if partition.last_fetched is None:
                continue
            try:
                properties = await asyncio.wait_for(
                    self.client.get_partition_properties(partition_id), READY_TIMEOUT_S
                )
            except (EventHubError, TimeoutError):
                continue
            last_enqueued = int(properties["last_enqueued_sequence_number"])
            lags[(self.stream, partition_id)] = max(0, last_enqueued - partition.last_fetched)
        return lags


class EventHubSink:
    def __init__(self, producer_client: ProducerClient, *, send_timeout_s: float = 10.0) -> None:
        self.client = producer_client
        self.send_timeout_s = send_timeout_s

    @classmethod
    def from_connection_string(cls, connection_string: str, eventhub_name: str,
                               *, send_timeout_s: float = 10.0) -> EventHubSink:
        client = EventHubProducerClient.from_connection_string(
            connection_string, eventhub_name=eventhub_name
        )
        return cls(client, send_timeout_s=send_timeout_s)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.client.close()

    async def send(self, records: Sequence[OutRecord]) -> None:
        try:
            # Consecutive records with one key share batches, so each lands on its key's
            # partition and the overall order of sending is kept.
            for key, run in itertools.groupby(records, key=lambda record: record.key):
                await self._send_run(_partition_key(key), run)
        except EventHubError as error:
            reason = type(error).__name__
            raise SinkError(f"Event Hubs did not accept the batch: {reason}") from error

    async def _send_run(self, partition_key: str | None, records: Iterable[OutRecord]) -> None:
        batch: EventDataBatch | None = None
        for record in records:
            event = _to_event(record)
            while True:
                if batch is None:
                    batch = await self.client.create_batch(partition_key=partition_key)
                try:
                    batch.add(event)
                    break
                except ValueError:
                    if len(batch) == 0:
                        raise RecordTooLargeError(
                            f"a record of {len(record.value)} bytes is larger than an "
                            "Event Hubs batch can hold"
                        ) from None
                await self.client.send_batch(batch, timeout=self.send_timeout_s)
                batch = None
        if batch is not None and len(batch) > 0:
            await self.client.send_batch(batch, timeout=self.send_timeout_s)

    async def is_ready(self) -> bool:
        try:
            await asyncio.wait_for(self.client.get_eventhub_properties(), READY_TIMEOUT_S)
        except (EventHubError, TimeoutError):
            return False
        return True


def blob_checkpoint_store(settings: TransportSettings) -> CheckpointStore | None:
    """The Blob Storage checkpoint store the settings name, or None when none is configured."""
    if settings.eventhubs_checkpoint_blob_connection_string is None:
        return None
    from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore

    return cast(CheckpointStore, BlobCheckpointStore.from_connection_string(
        settings.eventhubs_checkpoint_blob_connection_string.get_secret_value(),
        settings.eventhubs_checkpoint_container,
    ))


def _body_bytes(event: EventData) -> bytes:
    if event.body_type == AmqpMessageBodyType.DATA:
        return b"".join(cast(Iterable[bytes], event.body))
    # Value and sequence bodies come from other AMQP producers; hand over what they hold.
    body = event.body
    return body if isinstance(body, bytes) else str(body).encode()


def _timestamp_ms(event: EventData) -> int:
    enqueued = event.enqueued_time
    if enqueued is None:
        return int(time.time() * 1000)
    return int(enqueued.timestamp() * 1000)


def _partition_key(key: bytes | None) -> str | None:
    return None if key is None else key.decode("utf-8", errors="replace")


def _to_event(record: OutRecord) -> EventData:
    event = EventData(record.value)
    if record.headers:
        properties: dict[str | bytes, Any] = dict(record.headers)
        event.properties = properties
    return event


def _log_if_failed(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("Event Hubs receiving stopped", exc_info=(type(error), error,
                                                            error.__traceback__))
