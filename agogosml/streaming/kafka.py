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
    def __init__(self, topic: str, client_options: Mapping[str, Any],
                 delivery_timeout_s: float = 10.0, linger_ms: int = 2) -> None:
        self.topic = topic
        self.delivery_timeout_s = delivery_timeout_s
        self._options = dict(
            acks="all",
            enable_idempotence=True,
            linger_ms=linger_ms,
            request_timeout_ms=int(delivery_timeout_s * 1000),
            **client_options,
        )
        self._producer: AIOKafkaProducer | None = None

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise NotReadyError("the Kafka sink is not started")
        return self._producer

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(**self._options)
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def send(self, records: Sequence[Any]) -> None:
        try:
            deliveries = [
                await self.producer.send(self.topic, value=record.value, key=record.key,
                                         headers=list(record.headers) or None)
                for record in records
            ]
            await asyncio.wait_for(asyncio.gather(*deliveries), self.delivery_timeout_s)
        except MessageSizeTooLargeError:
            raise RecordTooLargeError(
                f"a record is larger than {self.topic} accepts (max.message.bytes)") from None
        except (KafkaError, TimeoutError) as error:
            reason = type(error).__name__
            raise SinkError(f"Kafka did not acknowledge the batch: {reason}") from error

    async def is_ready(self) -> bool:
        try:
            # A fresh metadata request: cached metadata would hide a broker that is down.
            cluster = await asyncio.wait_for(self.producer.client.fetch_all_metadata(),
                                             READY_TIMEOUT_S)
        except (KafkaError, TimeoutError):
            return False
        return self.topic in cluster.topics()
