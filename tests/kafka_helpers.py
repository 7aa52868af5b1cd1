"""Reading and writing test topics (also at a steady rate through broker outages), and
waiting for conditions with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from agogosml.streaming.topics import ensure_topics


async def create_topics(bootstrap: str, names: Iterable[str], partitions: int = 3) -> None:
    await ensure_topics({"bootstrap_servers": bootstrap}, list(names), partitions)


async def produce(bootstrap: str, topic: str, values: Iterable[bytes]) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, value) for value in values]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(futures)


async def produce_json(bootstrap: str, topic: str, items: Iterable[Any]) -> int:
    return await produce(bootstrap, topic, (orjson.dumps(item) for item in items))


class TopicReader:
    """Reads a whole topic from the beginning (no consumer group) and keeps every record."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.records: list[dict[str, Any]] = []
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> TopicReader:
        self._consumer = AIOKafkaConsumer(self.topic, bootstrap_servers=self.bootstrap,
                                          group_id=None, auto_offset_reset="earliest",
                                          enable_auto_commit=False)
        await self._consumer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._consumer is not None
        await self._consumer.stop()

    async def poll(self) -> None:
        assert self._consumer is not None
        batches = await self._consumer.getmany(timeout_ms=200, max_records=5_000)
        for messages in batches.values():
            self.records.extend(orjson.loads(message.value) for message in messages)

    async def until(self, condition: Callable[[list[dict[str, Any]]], bool],
                    timeout_s: float, what: str) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while not condition(self.records):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; "
                                     f"have {len(self.records)} records")
            await self.poll()
        return self.records


def ids(records: list[dict[str, Any]]) -> set[str]:
    return {record["id"] for record in records}


async def wait_for(condition: Callable[[], Awaitable[bool]], timeout_s: float, what: str,
                   interval_s: float = 0.2) -> None:
    """Poll an async condition until it holds; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(interval_s)  # polling the condition


async def partitions(bootstrap: str, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return [TopicPartition(topic, p["partition"])
            for entry in described if entry["topic"] == topic for p in entry["partitions"]]


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    wanted = await partitions(bootstrap, topic)
    if not wanted:
        raise AssertionError(f"the topic {topic} has no partitions")
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(wanted)
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in ends.items()}


async def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


async def group_caught_up(bootstrap: str, group: str, topic: str) -> bool:
    """True when the group has committed every partition of `topic` up to its end: nothing
    is left to process, so nothing more can be redelivered."""
    try:
        ends = await end_offsets(bootstrap, topic)
        committed = await committed_offsets(bootstrap, group, topic)
    except KafkaError:
        return False
    # A partition nothing was ever written to (end 0) has nothing to commit.
    return bool(ends) and all(committed.get(p, 0) >= end for p, end in ends.items())


async def read_topic_values(bootstrap: str, topic: str, timeout_s: float = 60) -> list[bytes]:
    """Every record's value in `topic` up to its current end, as bytes."""
    ends = await end_offsets(bootstrap, topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    values: list[bytes] = []
    try:
        partitions = [TopicPartition(topic, p) for p in ends]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        async with asyncio.timeout(timeout_s):
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp.partition]]:
                batches = await consumer.getmany(timeout_ms=200, max_records=5_000)
                for messages in batches.values():
                    values.extend(m.value for m in messages if m.offset < ends[m.partition])
    finally:
        await consumer.stop()
    return values


async def read_topic(bootstrap: str, topic: str, timeout_s: float = 60) -> list[dict[str, Any]]:
    """Every record of `topic` up to its current end."""
    return [orjson.loads(value) for value in await read_topic_values(bootstrap, topic,
                                                                      timeout_s)]


class PacedProducer:
    """Sends JSON items at a steady rate (in chunks every `tick_s`) from an idempotent
    producer with acks=all, and rides out broker outages: whatever the broker did not
    acknowledge is sent again, by a new producer, until it is. A record the broker stored
    without managing to say so can therefore be on the topic twice; count copies on the
    topic, not `acknowledged`, when duplicates matter."""

    def __init__(self, bootstrap: str, topic: str, rate: float, key_field: str,
                 tick_s: float = 0.1, request_timeout_ms: int = 5_000) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.chunk = max(1, round(rate * tick_s))
        self.tick_s = tick_s
        self.key_field = key_field
        self.request_timeout_ms = request_timeout_ms
        self.acknowledged: list[str] = []
        self.resent = 0
        self._producer: AIOKafkaProducer | None = None

    async def run(self, items: Sequence[dict[str, Any]], stop: asyncio.Event) -> None:
        """Send `items` in order until all are acknowledged or `stop` is set."""
        started = time.monotonic()
        try:
            for tick, at in enumerate(range(0, len(items), self.chunk)):
                if stop.is_set():
                    return
                # Pacing the stream; after an outage the schedule is behind and this is 0,
                # so the backlog goes out at once.
                await asyncio.sleep(max(0.0, started + tick * self.tick_s - time.monotonic()))
                await self._send_until_acknowledged(items[at:at + self.chunk])
        finally:
            if self._producer is not None:
                await self._producer.stop()

    async def _send_until_acknowledged(self, chunk: Sequence[dict[str, Any]]) -> None:
        pending = list(chunk)
        while pending:
            failed = await self._attempt(pending)
            if failed:
                self.resent += len(failed)
                await self._discard_producer()
                await asyncio.sleep(0.5)  # backing off while the broker is away
            pending = failed

    async def _attempt(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send `items`; return those the broker did not acknowledge."""
        try:
            producer = await self._ready_producer()
        except KafkaError:
            return items
        futures: list[asyncio.Future[Any] | None] = []
        for item in items:
            try:
                futures.append(await producer.send(
                    self.topic, orjson.dumps(item), key=str(item[self.key_field]).encode()))
            except KafkaError:
                futures.append(None)
        outcomes = await asyncio.gather(*(f for f in futures if f is not None),
                                        return_exceptions=True)
        delivered = iter(outcomes)
        failed = []
        for item, future in zip(items, futures, strict=True):
            if future is None or isinstance(next(delivered), BaseException):
                failed.append(item)
            else:
                self.acknowledged.append(str(item[self.key_field]))
        return failed

    async def _ready_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all",
                                        enable_idempotence=True, linger_ms=5,
                                        request_timeout_ms=self.request_timeout_ms)
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _discard_producer(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            with contextlib.suppress(KafkaError):
                await producer.stop()
