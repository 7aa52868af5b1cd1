"""Reading and writing test topics, and waiting for conditions with a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

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
