"""Two readers in one consumer group share the input's partitions; when one is killed -9
the group rebalances and the other takes its partitions over: every event comes out, and
only what the killed reader had not committed comes out twice."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from agogosml.demo.data import events
from agogosml.localstack.broker import KafkaBroker
from agogosml.localstack.processes import ServiceProcess
from tests.conftest import Registry
from tests.e2e.conftest import (
    REDELIVERABLE_PER_CRASH,
    app_process,
    assigned_partitions,
    metric,
    reader_process,
    writer_process,
)
from tests.kafka_helpers import PacedProducer, create_topics, group_caught_up, read_topic, wait_for

pytestmark = pytest.mark.asyncio(loop_scope="function")

PARTITIONS = 4
RATE = 300
"""Events per second the producer sends."""
STREAM_S = 30
"""Long enough to go on well past the rebalance (the group notices a killed member only
when its session times out: aiokafka's default, 10 s; the reader has no setting for it)."""


def balanced(readers: list[ServiceProcess]) -> Callable[[], Awaitable[bool]]:
    """Every reader owns partitions, and together they own each partition once."""
    async def check() -> bool:
        owned = [assigned_partitions(reader) for reader in readers]
        flat = [p for partitions in owned for p in partitions]
        return all(owned) and len(flat) == len(set(flat)) == PARTITIONS
    return check


def owns_all(reader: ServiceProcess) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return len(assigned_partitions(reader)) == PARTITIONS
    return check


def committed(readers: list[ServiceProcess]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        counts = [await metric(reader, "agogosml_reader_commits_total") for reader in readers]
        return all(count > 0 for count in counts)
    return check


async def test_a_surviving_reader_takes_over_the_partitions_of_a_killed_one(
        kafka: KafkaBroker, mlflow_registry: Registry, topic_prefix: str, schema_path: Path,
        tmp_path: Path, record_property: Any) -> None:
    topics = {kind: f"{topic_prefix}.{kind}" for kind in ("input", "output", "deadletter")}
    await create_topics(kafka.bootstrap, topics.values(), partitions=PARTITIONS)
    writer = writer_process(kafka.bootstrap, topics["output"], tmp_path)
    app = app_process(mlflow_registry, writer, tmp_path)
    survivor, victim = readers = [
        reader_process(kafka.bootstrap, topic_prefix, app, schema_path, tmp_path,
                       label=f"input_reader-{n}") for n in (1, 2)]
    services = [writer, app, *readers]
    producer = PacedProducer(kafka.bootstrap, topics["input"], RATE, "transaction_id")
    try:
        for service in services:
            service.start()
        for service in services:
            await asyncio.to_thread(service.wait_ready, 120)
        # Before any traffic, so that the only rebalance under load is the one after the kill.
        await wait_for(balanced(readers), 60, "both readers to own partitions")
        producing = asyncio.create_task(
            producer.run(events(RATE * STREAM_S, seed=108), asyncio.Event()))
        await wait_for(committed(readers), 60, "both readers to commit offsets")
        victim.kill()
        killed_at = time.monotonic()
        await wait_for(owns_all(survivor), 90, "the survivor to own every partition")
        takeover_s = time.monotonic() - killed_at
        await producing
        await wait_for(lambda: group_caught_up(kafka.bootstrap, f"{topic_prefix}-reader",
                                               topics["input"]),
                       120, "the surviving reader to commit the whole input")
        outputs = await read_topic(kafka.bootstrap, topics["output"])
        inputs = await read_topic(kafka.bootstrap, topics["input"])
    finally:
        for service in reversed(services):
            service.terminate(timeout_s=30)

    sent = set(producer.acknowledged)
    output_copies = Counter(record["id"] for record in outputs)
    lost = sent - output_copies.keys()
    duplicates = len(outputs) - len(output_copies)
    input_duplicates = len(inputs) - len({item["transaction_id"] for item in inputs})
    bound = REDELIVERABLE_PER_CRASH + input_duplicates
    figures = {"sent": len(sent), "delivered_distinct": len(sent & output_copies.keys()),
               "lost": len(lost), "output_records": len(outputs),
               "duplicate_copies": duplicates, "bound": bound,
               "input_duplicates": input_duplicates, "takeover_s": round(takeover_s, 1)}
    print("\nrebalance: " + " ".join(f"{key}={value}" for key, value in figures.items()))
    record_property("rebalance", figures)

    assert lost == set(), f"{len(lost)} ids never came out, e.g. {sorted(lost)[:20]}"
    assert duplicates <= bound, figures
