"""The Kafka sink on a real broker: records the topic can never take are named, the rest
are written, and the sink keeps working afterwards; dead letters fall back to smaller
forms until the topic takes them."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from agogosml.errors import RecordTooLargeError
from agogosml.localstack.broker import KafkaBroker
from agogosml.retry import Backoff
from agogosml.services.input_reader.deadletters import DeadLetterWriter, Rejection
from agogosml.streaming.base import OutRecord, Position, SourceRecord
from agogosml.streaming.kafka import KafkaSink
from tests.kafka_helpers import TopicReader

LIMIT = 2_000


@pytest.fixture
async def small_topic(kafka: KafkaBroker, topic_prefix: str) -> AsyncIterator[KafkaSink]:
    """A started sink to a fresh one-partition topic that takes records up to LIMIT bytes."""
    topic = f"{topic_prefix}.small"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1,
                                            topic_configs={"max.message.bytes": str(LIMIT)})])
    finally:
        await admin.close()
    sink = KafkaSink(topic, {"bootstrap_servers": kafka.bootstrap}, linger_ms=0)
    await sink.start()
    try:
        yield sink
    finally:
        await sink.stop()


async def test_records_too_large_for_the_topic_are_named_and_the_rest_written(
        kafka: KafkaBroker, small_topic: KafkaSink) -> None:
    sink = small_topic
    records = [OutRecord(value=orjson.dumps({"n": n, "pad": "x" * (5_000 if n == 1 else 10)}))
               for n in range(3)]
    with pytest.raises(RecordTooLargeError) as refused:
        await sink.send(records)
    # The broker refuses whole producer batches, so records batched with the big one
    # may be named too; none of the named ones was written, and each that fits goes
    # through when sent on its own.
    assert 1 in refused.value.refused
    for index in refused.value.refused:
        if index != 1:
            await sink.send([records[index]])
    with pytest.raises(RecordTooLargeError):
        await sink.send([records[1]])
    await sink.send([OutRecord(value=b'{"n": 3}')])  # the sink still works afterwards
    async with TopicReader(kafka.bootstrap, sink.topic) as reader:
        written = await reader.until(lambda r: len(r) >= 3, 30, "the records that fit")
    assert sorted(r["n"] for r in written) == [0, 2, 3], "each exactly once"


async def test_dead_letters_shrink_until_the_topic_takes_them(
        kafka: KafkaBroker, small_topic: KafkaSink) -> None:
    writer = DeadLetterWriter(small_topic, Backoff(0.01, 0.05), max_original_bytes=LIMIT * 2)
    big = b"z" * (LIMIT * 3)
    rejections = [
        Rejection(SourceRecord(b"{bad", Position("in", "0", 1), 0), "not_json", "short"),
        Rejection(SourceRecord(big, Position("in", "0", 2), 0), "too_large", "d" * 5_000),
    ]
    await writer.write(rejections, asyncio.Event())
    async with TopicReader(kafka.bootstrap, small_topic.topic) as reader:
        letters = await reader.until(lambda r: len(r) >= 2, 30, "both letters")
    by_offset = {letter["source"]["offset"]: letter for letter in letters}
    assert base64.b64decode(by_offset[1]["original"]) == b"{bad"
    assert by_offset[2]["minimal"] is True
    assert by_offset[2]["original_length"] == len(big)
    assert by_offset[2]["reason"] == "too_large"
