"""Chaos: a steady stream through writer, app and reader as real processes on a broker of
the test's own, while each service is killed -9 three times and the broker twice. Every
event comes out; duplicates stay within what the crashes can legitimately redeliver."""

from __future__ import annotations

import asyncio
import base64
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from agogosml.demo.data import events
from agogosml.localstack.broker import KafkaBroker
from agogosml.localstack.processes import ServiceProcess
from tests.conftest import Registry
from tests.e2e.conftest import REDELIVERABLE_PER_CRASH, Pipeline, build_pipeline
from tests.kafka_helpers import (
    PacedProducer,
    TopicReader,
    create_topics,
    group_caught_up,
    read_topic,
    wait_for,
)

pytestmark = pytest.mark.asyncio(loop_scope="function")

RATE = 300
"""Events per second the producer sends."""
MAX_STREAM_S = 240
"""Events enough for this long (a run takes about 125 s); the stream stops when the last
crash has recovered."""
SCHEDULE = ("reader", "app", "writer", "broker", "reader", "app", "writer", "broker",
            "reader", "app", "writer")
RECOVERED = 200
"""Output records after a restart that show the stream flows again, before the next kill."""
BROKER_REDELIVERABLE = 2 * REDELIVERABLE_PER_CRASH
"""A broker outage fails the writer's sends after they were queued: a batch in flight can be
stored by the attempt that timed out and again by the reader's retry."""


async def crash(pipeline: Pipeline, broker: KafkaBroker, victim: str) -> None:
    """kill -9 the victim, start it again on the same ports (and data dir), wait until ready."""
    if victim == "broker":
        await asyncio.to_thread(broker.kill)
        await asyncio.to_thread(broker.start, 120)
        return
    service: ServiceProcess = getattr(pipeline, victim)
    service.kill()
    service.start()
    await asyncio.to_thread(service.wait_ready, 120)


def grew_by(mark: int, count: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda records: len(records) >= mark + count


def letter_id(letter: dict[str, Any]) -> str:
    """The event id in a dead letter's original bytes (or the letter's source if those are
    not a JSON object with an id)."""
    try:
        return str(orjson.loads(base64.b64decode(letter["original"]))["transaction_id"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return repr(letter.get("source"))


def summary(figures: dict[str, Any]) -> str:
    return "chaos: " + " ".join(f"{key}={value}" for key, value in figures.items())


@pytest.mark.timeout(480)  # about 3 minutes on 2 busy cores; the default 300 s is too tight
async def test_nothing_is_lost_when_every_service_and_the_broker_are_killed(
        own_kafka: KafkaBroker, mlflow_registry: Registry, topic_prefix: str,
        schema_path: Path, tmp_path: Path, record_property: Any) -> None:
    pipeline = build_pipeline(own_kafka.bootstrap, mlflow_registry, topic_prefix, schema_path,
                              tmp_path)
    await create_topics(own_kafka.bootstrap, [pipeline.input_topic, pipeline.output_topic,
                                              pipeline.deadletter_topic])
    producer = PacedProducer(own_kafka.bootstrap, pipeline.input_topic, RATE, "transaction_id")
    stop = asyncio.Event()
    recoveries: list[str] = []  # per kill: seconds until the output grew again
    started = time.monotonic()
    try:
        await asyncio.to_thread(pipeline.start)
        producing = asyncio.create_task(producer.run(events(RATE * MAX_STREAM_S, seed=107),
                                                     stop))
        async with TopicReader(own_kafka.bootstrap, pipeline.output_topic) as output:
            await output.until(lambda r: len(r) >= RECOVERED, 60, "the stream to be flowing")
            for victim in SCHEDULE:
                killed_at = time.monotonic()
                await crash(pipeline, own_kafka, victim)
                await output.until(grew_by(len(output.records), RECOVERED), 120,
                                   f"the stream to flow again after killing the {victim}")
                recoveries.append(f"{victim}:{time.monotonic() - killed_at:.0f}")
        stop.set()
        await producing
        stream_s = time.monotonic() - started
        await wait_for(lambda: group_caught_up(own_kafka.bootstrap, pipeline.consumer_group,
                                               pipeline.input_topic),
                       150, "the reader to commit the whole input")
        inputs = await read_topic(own_kafka.bootstrap, pipeline.input_topic)
        outputs = await read_topic(own_kafka.bootstrap, pipeline.output_topic)
        letters = await read_topic(own_kafka.bootstrap, pipeline.deadletter_topic)
    finally:
        stop.set()
        await asyncio.to_thread(pipeline.stop)

    sent = set(producer.acknowledged)
    input_copies = Counter(item["transaction_id"] for item in inputs)
    output_copies = Counter(record["id"] for record in outputs)
    dead_lettered = {letter_id(letter): letter["reason"] for letter in letters}
    lost = sent - output_copies.keys() - dead_lettered.keys()
    duplicates = len(outputs) - len(output_copies)
    input_duplicates = len(inputs) - len(input_copies)
    service_kills = sum(victim != "broker" for victim in SCHEDULE)
    broker_kills = len(SCHEDULE) - service_kills
    bound = (service_kills * REDELIVERABLE_PER_CRASH + broker_kills * BROKER_REDELIVERABLE
             + input_duplicates)
    figures = {"sent": len(sent), "delivered_distinct": len(sent & output_copies.keys()),
               "lost": len(lost), "output_records": len(outputs),
               "duplicate_copies": duplicates, "bound": bound,
               "input_duplicates": input_duplicates, "producer_resent": producer.resent,
               "dead_letters": len(letters), "service_kills": service_kills,
               "broker_kills": broker_kills, "stream_s": round(stream_s),
               "recovery_s": ",".join(recoveries)}
    print("\n" + summary(figures))
    record_property("chaos", figures)

    assert lost == set(), f"{len(lost)} ids never came out, e.g. {sorted(lost)[:20]}"
    assert dead_lettered == {}, "demo events are valid: nothing should be dead-lettered"
    assert output_copies.keys() <= input_copies.keys(), "every id that came out went in"
    assert input_copies.keys() == sent, "the producer's acknowledgements match the input"
    assert duplicates <= bound, summary(figures)
