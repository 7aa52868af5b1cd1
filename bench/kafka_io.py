"""The benchmark's own Kafka traffic: fresh topics, loading and pacing input, and reading
a topic back once the expected records are there."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from agogosml.streaming.topics import ensure_topics

PARTITIONS = 2
"""Partitions of every benchmark topic: two, so that two reader processes of one group
each get one (the scale-out scenario) and every scenario reads the same layout."""
POLL_INTERVAL_S = 0.1
"""How often a topic's end offsets are checked while waiting for records."""


@dataclass(frozen=True, slots=True)
class Topics:
    input: str
    output: str
    deadletter: str
    group: str
    """The consumer group of whatever reads the input topic in this scenario (fresh, so
    that a shared, pre-loaded input topic is read from its beginning by every run)."""

    @classmethod
    def fresh(cls, scenario: str, input_topic: str | None = None) -> Topics:
        """New output and dead-letter topics and a new group; a new input topic too unless
        `input_topic` (one already loaded) is given."""
        prefix = f"bench.{scenario}.{uuid.uuid4().hex[:8]}"
        return cls(input_topic or f"{prefix}.input", f"{prefix}.output",
                   f"{prefix}.deadletter", f"{prefix}.group")


async def create_topics(bootstrap: str, topics: Topics) -> None:
    """Create the topics (an input topic that exists already is left as it is); the output
    topic stamps each record with the broker's append time (LogAppendTime), so a record's
    timestamp is when it landed on the output topic."""
    await ensure_topics({"bootstrap_servers": bootstrap},
                        [topics.input, topics.output, topics.deadletter], PARTITIONS)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(
            ConfigResourceType.TOPIC, topics.output,
            configs={"message.timestamp.type": "LogAppendTime"})])
    finally:
        await admin.close()


async def group_stable(admin: AIOKafkaAdminClient, group: str, members: int) -> bool:
    """Whether the consumer group is Stable with `members` members (each then holds its
    share of the partitions: no rebalance is under way)."""
    for response in await admin.describe_consumer_groups([group]):
        for found in response.groups:  # (error_code, group_id, state, protocol_type, ...)
            state, current = found[2], found[5]
            return bool(state == "Stable" and len(current) == members)
    return False


def _producer(bootstrap: str, linger_ms: int) -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                            linger_ms=linger_ms)


async def preload(bootstrap: str, topic: str, values: Sequence[bytes]) -> None:
    """Write every value and wait until all are acknowledged."""
    producer = _producer(bootstrap, linger_ms=5)
    await producer.start()
    try:
        deliveries = [await producer.send(topic, value) for value in values]
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()


async def produce_paced(bootstrap: str, topic: str, values: Sequence[bytes],
                        rate_per_s: float, tick_s: float = 0.01) -> float:
    """Send `values` at `rate_per_s` in small groups every `tick_s`, on an absolute
    schedule so that delays do not accumulate; return the rate achieved."""
    per_tick = max(1, round(rate_per_s * tick_s))
    producer = _producer(bootstrap, linger_ms=0)
    await producer.start()
    try:
        deliveries = []
        started = time.monotonic()
        for tick, first in enumerate(range(0, len(values), per_tick)):
            ahead = started + tick * tick_s - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)  # pacing to the target rate, not waiting on a condition
            deliveries += [await producer.send(topic, value)
                           for value in values[first:first + per_tick]]
        elapsed = time.monotonic() - started
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()
    return len(values) / elapsed if elapsed > 0 else float("inf")


@dataclass(frozen=True, slots=True)
class SeenRecord:
    id: str
    carried_ms: int | None
    """The input record's Kafka timestamp as the pipeline carries it (the event's "time");
    None for records that do not carry it (the raw pass-through's copies)."""
    timestamp_ms: int
    """The record's own Kafka timestamp: on an output topic, when it was appended."""


def scored_event(value: bytes | None, timestamp_ms: int) -> SeenRecord:
    """A pipeline output record: {"id": ..., "time": ..., "prediction": ...}."""
    document = orjson.loads(value or b"{}")
    return SeenRecord(str(document["id"]), int(document["time"]), timestamp_ms)


def raw_event(value: bytes | None, timestamp_ms: int) -> SeenRecord:
    """A demo transaction as produced (on the input topic, or copied by the pass-through)."""
    document = orjson.loads(value or b"{}")
    return SeenRecord(str(document["transaction_id"]), None, timestamp_ms)


class TopicCollector:
    """Reads a topic from the beginning, without a consumer group. It waits on
    the topic's end offsets (cheap) and reads records only when enough are there, so the
    reading disturbs the run being measured as little as possible."""

    def __init__(self, bootstrap: str, topic: str,
                 decode: Callable[[bytes | None, int], SeenRecord] = scored_event) -> None:
        self.partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        self.decode = decode
        self.records: list[SeenRecord] = []
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                          enable_auto_commit=False,
                                          auto_offset_reset="earliest")

    async def __aenter__(self) -> TopicCollector:
        await self._consumer.start()
        self._consumer.assign(self.partitions)
        await self._consumer.seek_to_beginning(*self.partitions)
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._consumer.stop()

    async def total(self) -> int:
        """Records on the topic now (the sum of its end offsets; no records are read)."""
        return sum((await self._consumer.end_offsets(self.partitions)).values())

    async def read_all(self) -> list[SeenRecord]:
        """Every record on the topic now."""
        await self._read_up_to(await self._consumer.end_offsets(self.partitions))
        return self.records

    async def until_ids(self, wanted: set[str], timeout_s: float, on_poll: Callable[[], None],
                        partial_ok: bool = False) -> list[SeenRecord]:
        """Return every record read once all `wanted` ids were seen; `on_poll` runs on each
        check (to fail early when a process died, or to sample CPU use). After `timeout_s`,
        raise TimeoutError, or with `partial_ok` return what was read by then."""
        deadline = time.monotonic() + timeout_s
        seen = {record.id for record in self.records}
        while True:
            on_poll()
            ends = await self._consumer.end_offsets(self.partitions)
            timed_out = time.monotonic() > deadline
            if timed_out or sum(ends.values()) - len(self.records) >= len(wanted - seen):
                seen.update(record.id for record in await self._read_up_to(ends))
                if wanted <= seen or (timed_out and partial_ok):
                    return self.records
            if timed_out:
                raise TimeoutError(f"{len(wanted - seen)} of {len(wanted)} ids not on "
                                   f"{self.partitions[0].topic} after {timeout_s:.0f}s")
            await asyncio.sleep(POLL_INTERVAL_S)  # polling the end offsets until they suffice

    async def _read_up_to(self, ends: dict[TopicPartition, int]) -> list[SeenRecord]:
        new: list[SeenRecord] = []
        while not await self._reached(ends):
            batches = await self._consumer.getmany(timeout_ms=1000, max_records=10_000)
            new += [self.decode(message.value, message.timestamp)
                    for messages in batches.values() for message in messages]
        self.records += new
        return new

    async def _reached(self, ends: dict[TopicPartition, int]) -> bool:
        positions = [await self._consumer.position(tp) for tp in ends]
        return all(position >= end for position, end in zip(positions, ends.values(),
                                                              strict=True))
