"""The pipeline end to end over a real broker: every event comes out scored, bad input is
dead-lettered with reasons, and nothing is lost when a service or the broker dies."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import httpx
import mlflow
import numpy as np
import orjson
import pytest

from agogosml.demo.data import FEATURES, events
from agogosml.localstack.broker import KafkaBroker
from agogosml.localstack.processes import ServiceProcess
from tests.conftest import Registry
from tests.e2e.conftest import Pipeline
from tests.kafka_helpers import TopicReader, create_topics, ids, produce, produce_json

pytestmark = pytest.mark.asyncio(loop_scope="function")


def expected_predictions(registry: Registry, items: list[dict[str, Any]]) -> dict[str, int]:
    import pandas as pd

    model = mlflow.pyfunc.load_model(registry.model_uri)
    frame = pd.DataFrame.from_records(items)[list(FEATURES)]
    classes = np.asarray(model.predict(frame)).argmax(axis=1)
    return {item["transaction_id"]: int(c) for item, c in zip(items, classes, strict=True)}


async def start(pipeline: Pipeline) -> None:
    await create_topics(pipeline.bootstrap, [pipeline.input_topic, pipeline.output_topic,
                                             pipeline.deadletter_topic])
    await asyncio.to_thread(pipeline.start)


async def test_every_event_comes_out_once_with_the_models_prediction(
        pipeline: Pipeline, mlflow_registry: Registry) -> None:
    items = events(10_000, seed=101)
    expected = expected_predictions(mlflow_registry, items)
    await start(pipeline)
    await produce_json(pipeline.bootstrap, pipeline.input_topic, items)

    async with TopicReader(pipeline.bootstrap, pipeline.output_topic) as output:
        records = await output.until(lambda r: ids(r) >= expected.keys(), 180,
                                     "all 10,000 ids on the output topic")
    assert ids(records) == set(expected)
    assert len(records) == len(expected), "no failure happened, so no duplicates either"
    wrong = [r["id"] for r in records if r["prediction"] != expected[r["id"]]]
    assert wrong == []
    sample = records[0]
    assert sample["model"] == {"name": "demo", "version": mlflow_registry.demo.version}
    assert set(sample["scores"]) == {"0", "1"}
    assert sample["subject"].startswith("C")


async def test_bad_input_goes_to_dead_letters_with_reasons_while_the_rest_flows(
        pipeline: Pipeline) -> None:
    good = events(200, seed=102)
    broken_schema = [dict(good[0], transaction_id="bad-hour", hour=25),
                     {k: v for k, v in good[1].items() if k != "amount"}]
    oversized = orjson.dumps(dict(good[2], transaction_id="big", notes="x" * 5000))
    bad_values = [b"{not json", b"[1, 2, 3]", *map(orjson.dumps, broken_schema), oversized]
    await start(pipeline)
    values = [orjson.dumps(item) for item in good[:100]] + bad_values \
        + [orjson.dumps(item) for item in good[100:]]
    await produce(pipeline.bootstrap, pipeline.input_topic, values)

    async with TopicReader(pipeline.bootstrap, pipeline.deadletter_topic) as deadletters:
        letters = await deadletters.until(lambda r: len(r) >= len(bad_values), 60,
                                          "every bad record dead-lettered")
    async with TopicReader(pipeline.bootstrap, pipeline.output_topic) as output:
        scored = await output.until(lambda r: len(ids(r)) >= len(good), 60, "the good records")

    assert ids(scored) == {item["transaction_id"] for item in good}
    reasons = Counter(letter["reason"] for letter in letters)
    assert reasons == {"not_json": 1, "not_object": 1, "schema_violation": 2, "too_large": 1}
    originals = sorted(base64.b64decode(letter["original"]) for letter in letters)
    assert originals == sorted(bad_values)
    hour = next(x for x in letters if base64.b64decode(x["original"]) == bad_values[2])
    assert hour["detail"].startswith("hour:")
    assert "25" in hour["detail"]
    assert all(letter["source"]["stream"] == pipeline.input_topic for letter in letters)
    assert all(isinstance(letter["source"]["offset"], int) for letter in letters)


async def _produce_steadily(bootstrap: str, topic: str, items: list[dict[str, Any]],
                            chunks: int = 20) -> None:
    size = len(items) // chunks
    for start_at in range(0, len(items), size):
        await produce_json(bootstrap, topic, items[start_at:start_at + size])
        await asyncio.sleep(0.1)  # spreading production over time, not waiting on a condition


async def _crash_and_recover(pipeline: Pipeline, victim: ServiceProcess,
                             items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    await start(pipeline)
    producing = asyncio.create_task(
        _produce_steadily(pipeline.bootstrap, pipeline.input_topic, items))
    wanted = {item["transaction_id"] for item in items}
    async with TopicReader(pipeline.bootstrap, pipeline.output_topic) as output:
        await output.until(lambda r: len(r) >= 300, 60, "the stream to be flowing")
        victim.kill()
        await producing
        victim.start()
        await asyncio.to_thread(victim.wait_ready)
        return await output.until(lambda r: ids(r) >= wanted, 120, "every id after recovery")


@pytest.mark.parametrize("victim", ["app", "writer"])
async def test_a_killed_service_loses_nothing(pipeline: Pipeline, victim: str) -> None:
    items = events(3_000, seed=103)
    process = pipeline.app if victim == "app" else pipeline.writer
    records = await _crash_and_recover(pipeline, process, items)
    assert ids(records) == {item["transaction_id"] for item in items}


async def test_a_killed_reader_resumes_from_its_last_commit(pipeline: Pipeline) -> None:
    items = events(3_000, seed=104)
    records = await _crash_and_recover(pipeline, pipeline.reader, items)
    assert ids(records) == {item["transaction_id"] for item in items}
    duplicates = len(records) - len(ids(records))
    # Only batches in flight at the crash are redelivered (max_in_flight 4 x 50, plus a
    # batch whose commit was under way): a few batches' worth, not the 3,000 from the start.
    assert duplicates <= 300


async def test_a_gracefully_stopped_reader_commits_what_was_acknowledged(
        pipeline: Pipeline) -> None:
    items = events(2_000, seed=105)
    await start(pipeline)
    await produce_json(pipeline.bootstrap, pipeline.input_topic, items[:1_000])
    async with TopicReader(pipeline.bootstrap, pipeline.output_topic) as output:
        await output.until(lambda r: len(r) >= 1_000, 60, "the first half")
        assert pipeline.reader.terminate() == -signal.SIGTERM  # uvicorn re-raises the signal
        assert '"abandoned_batches":0' in pipeline.reader.log_path.read_text()
        await produce_json(pipeline.bootstrap, pipeline.input_topic, items[1_000:])
        pipeline.reader.start()
        await asyncio.to_thread(pipeline.reader.wait_ready)
        records = await output.until(lambda r: len(ids(r)) >= 2_000, 60, "the second half")
    assert len(records) == len(ids(records)) == 2_000, "a drained reader redelivers nothing"


async def test_a_broker_outage_loses_nothing(pipeline: Pipeline, kafka: KafkaBroker) -> None:
    items = events(3_000, seed=106)
    wanted = {item["transaction_id"] for item in items}
    await start(pipeline)
    await produce_json(pipeline.bootstrap, pipeline.input_topic, items)
    async with TopicReader(pipeline.bootstrap, pipeline.output_topic) as output:
        await output.until(lambda r: len(r) >= 200, 60, "the stream to be flowing")
    await asyncio.to_thread(kafka.stop)
    try:
        await _wait_not_ready(pipeline.writer)
    finally:
        await asyncio.to_thread(kafka.start)
    async with TopicReader(pipeline.bootstrap, pipeline.output_topic) as output:
        records = await output.until(lambda r: ids(r) >= wanted, 180, "every id after the outage")
    assert ids(records) == wanted


async def _wait_not_ready(service: ServiceProcess, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while (await client.get(f"{service.url}/readyz", timeout=10)).status_code == 200:
            assert time.monotonic() < deadline, f"{service.name} stayed ready during the outage"
            await asyncio.sleep(0.2)


async def test_replay_sends_dead_letters_back_to_the_input(kafka: KafkaBroker,
                                                           topic_prefix: str) -> None:
    topics = {kind: f"{topic_prefix}.{kind}" for kind in ("input", "deadletter")}
    await create_topics(kafka.bootstrap, topics.values())
    originals = [b'{"transaction_id": "late-1"}', b"{broken"]
    letters = [orjson.dumps({"reason": "not_json", "detail": "", "source": {},
                             "original": base64.b64encode(o).decode()}) for o in originals]
    await produce(kafka.bootstrap, topics["deadletter"], letters)
    env = {"AGOGOSML_READER_SOURCE": "kafka",
           "AGOGOSML_READER_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
           "AGOGOSML_READER_INPUT_STREAM": topics["input"],
           "AGOGOSML_READER_DEADLETTER_STREAM": topics["deadletter"],
           "AGOGOSML_READER_CONSUMER_GROUP": f"{topic_prefix}-reader"}
    command = [sys.executable, "-m", "agogosml.cli", "replay-deadletters", "--idle-timeout", "3"]
    first = await asyncio.to_thread(subprocess.run, command, env={**os.environ, **env},
                                    capture_output=True, timeout=120)
    assert first.returncode == 0, first.stderr.decode()
    assert b"replayed 2 dead letters" in first.stdout
    replayed = await _read_raw(kafka.bootstrap, topics["input"], 2)
    assert sorted(replayed) == sorted(originals)
    second = await asyncio.to_thread(subprocess.run, command, env={**os.environ, **env},
                                     capture_output=True, timeout=120)
    assert b"replayed 0 dead letters" in second.stdout, "a replay commits what it sent"


async def _read_raw(bootstrap: str, topic: str, count: int) -> list[bytes]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    values: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            while len(values) < count:
                batches = await consumer.getmany(timeout_ms=200)
                values.extend(m.value for ms in batches.values() for m in ms)
    finally:
        await consumer.stop()
    return values
