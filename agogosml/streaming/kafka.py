"""Kafka source and sink on aiokafka: consumer groups with manual commits, and an
idempotent producer whose `send` returns only after every record is acknowledged
by all in-sync replicas (acks=all)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError, MessageSizeTooLargeError

from agogosml.errors import NotReadyError, RecordTooLargeError, SinkError
from agogosml.streaming.base import DrainHook, PartitionKey, Position, SourceRecord

log = logging.getLogger(__name__)


READY_TIMEOUT_S = 3.0


class _DrainBeforeRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, source: KafkaSource) -> None:
        self._source = source

    async def on_partitions_revoked(self, revoked: Any) -> None:
        if revoked and self._source.drain_hook is not None:
            await self._source.drain_hook()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("partitions assigned", extra={"partitions": sorted(map(str, assigned))})
        if self._source.paused:
            self._source.consumer.pause(*assigned)


class KafkaSource:
    def __init__(self, topic: str, group_id: str, client_options: Mapping[str, Any],
                 max_partition_fetch_bytes: int = 1 << 20) -> None:
        self.topic = topic
        self.paused = False
        self.drain_hook: DrainHook | None = None
        self._options = dict(
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=max_partition_fetch_bytes,
            **client_options,
        )
        self._consumer: AIOKafkaConsumer | None = None

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise NotReadyError("the Kafka source is not started")
        return self._consumer

    def set_drain_hook(self, hook: DrainHook) -> None:
        self.drain_hook = hook

    async def start(self) -> None:
        # aiokafka clients bind to the running event loop, so they are made here.
        self._consumer = AIOKafkaConsumer(**self._options)
        await self.consumer.start()
        self.consumer.subscribe([self.topic], listener=_DrainBeforeRevoke(self))

    async def stop(self) -> None:
        await self.consumer.stop()

    async def fetch(self, max_records: int, timeout_s: float) -> Sequence[SourceRecord]:
        batches = await self.consumer.getmany(
            timeout_ms=int(timeout_s * 1000), max_records=max_records
        )
        return [
            SourceRecord(
                value=message.value if message.value is not None else b"",
                key=message.key,
                timestamp_ms=message.timestamp,
                position=Position(tp.topic, str(tp.partition), message.offset),
            )
            for tp, messages in batches.items()
            for message in messages
        ]

    async def commit(self, last_done: Mapping[PartitionKey, int]) -> None:
        assigned = self.consumer.assignment()
        offsets = {
            tp: offset + 1
            for (topic, partition), offset in last_done.items()
            if (tp := TopicPartition(topic, int(partition))) in assigned
        }
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except CommitFailedError:
            # The group rebalanced; the new owner re-reads from the last commit (at least once).
            log.warning("commit refused after a rebalance; records will be redelivered")

    def pause(self) -> None:
        self.paused = True
        self.consumer.pause(*self.consumer.assignment())

    def resume(self) -> None:
        self.paused = False
        self.consumer.resume(*self.consumer.assignment())

    async def is_ready(self) -> bool:
        try:
            topics = await asyncio.wait_for(self.consumer.topics(), READY_TIMEOUT_S)
        except (KafkaError, TimeoutError):
            return False
        return self.topic in topics

    async def lag(self) -> Mapping[PartitionKey, int]:
        lags: dict[PartitionKey, int] = {}
        for tp in self.consumer.assignment():
            highwater = self.consumer.highwater(tp)
            if highwater is None:
                continue
            position = await self.consumer.position(tp)
            lags[(tp.topic, str(tp.partition))] = max(0, highwater - position)
        return lags


class KafkaSink:
    """After a failed delivery the producer is replaced: an idempotent producer whose
    batch the broker refused keeps sequence numbers the broker never saw, and every
    later batch would fail with OutOfOrderSequenceNumber."""

    def __init__(self, topic: str, client_options: Mapping[str, Any],
                 delivery_timeout_s: float = 10.0, linger_ms: int = 2) -> None:
        self.topic = topic
        self.delivery_timeout_s = delivery_timeout_s
        self._options = dict(
            acks="all",
            enable_idempotence=True,
            linger_ms=linger_ms,
            # A 500-event scored batch with its input features is ~180 KB: in aiokafka's
            # default 16 KB batches it took a dozen produce requests per partition.
            max_batch_size=256 * 1024,
            request_timeout_ms=int(delivery_timeout_s * 1000),
            **client_options,
        )
        self._producer: AIOKafkaProducer | None = None
        self._renewing = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(**self._options)
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
        if self._closing:
            await asyncio.wait(self._closing)

    async def _current(self) -> AIOKafkaProducer:
        async with self._renewing:
            if self._producer is None:
                fresh = AIOKafkaProducer(**self._options)
                try:
                    await fresh.start()
                except KafkaError as error:
                    await _close_quietly(fresh, self.delivery_timeout_s)
                    raise SinkError(f"cannot reach Kafka: {type(error).__name__}") from error
                self._producer = fresh
            return self._producer

    def _retire(self, producer: AIOKafkaProducer) -> None:
        if self._producer is not producer:
            return  # another send retired it already
        self._producer = None
        task = asyncio.create_task(_close_quietly(producer, self.delivery_timeout_s))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def send(self, records: Sequence[Any]) -> None:
        """Every record is attempted. Records the broker can never take (larger than the
        topic's max.message.bytes) are named in RecordTooLargeError.refused; any other
        failure raises SinkError, and the whole batch should be sent again."""
        producer = await self._current()
        refused: list[int] = []
        deliveries: dict[int, asyncio.Future[Any]] = {}
        try:
            for index, record in enumerate(records):
                try:
                    deliveries[index] = await producer.send(
                        self.topic, value=record.value, key=record.key,
                        headers=list(record.headers) or None)
                except MessageSizeTooLargeError:  # above the producer's max_request_size
                    refused.append(index)
            outcomes = await asyncio.wait_for(
                asyncio.gather(*deliveries.values(), return_exceptions=True),
                self.delivery_timeout_s)
        except (KafkaError, TimeoutError) as error:
            self._retire(producer)
            raise SinkError(f"Kafka did not acknowledge the batch: {type(error).__name__}") \
                from error
        failed = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if failed:
            self._retire(producer)
        for index, outcome in zip(deliveries, outcomes, strict=True):
            if isinstance(outcome, MessageSizeTooLargeError):
                refused.append(index)
            elif isinstance(outcome, BaseException):
                raise SinkError("Kafka did not acknowledge the batch: "
                                f"{type(outcome).__name__}") from outcome
        if refused:
            raise RecordTooLargeError(
                f"{len(refused)} of {len(records)} records are larger than {self.topic} "
                "accepts (max.message.bytes)", refused=tuple(sorted(refused)))

    async def is_ready(self) -> bool:
        try:
            producer = await self._current()
            # A fresh metadata request: cached metadata would hide a broker that is down.
            cluster = await asyncio.wait_for(producer.client.fetch_all_metadata(),
                                             READY_TIMEOUT_S)
        except (KafkaError, TimeoutError, SinkError):
            return False
        return self.topic in cluster.topics()


async def _close_quietly(producer: AIOKafkaProducer, timeout_s: float) -> None:
    """Close a producer that failed; it may hang on a broker that is gone."""
    try:
        await asyncio.wait_for(producer.stop(), timeout_s)
    except Exception:
        log.debug("closing a failed Kafka producer did not finish cleanly", exc_info=True)
