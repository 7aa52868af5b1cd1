"""The Spark engine against the real broker, the real MLflow model and the real trio: the same
events give the same scored events, bad input is dead-lettered with the reader's reasons,
and a job killed mid-stream and restarted from its checkpoint loses nothing.

Spark runs in local[2] in a child process, as `python -m agogosml.engines.spark`; the first
two tests share one job (one JVM start), on topics of their own."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from agogosml.demo.data import events
from agogosml.localstack.broker import KafkaBroker
from tests.conftest import Registry
from tests.e2e.conftest import build_pipeline
from tests.engines.spark_job import SCHEMA_PATH, SparkJob, job_env
from tests.kafka_helpers import TopicReader, create_topics, ids, produce, produce_json

pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.asyncio(loop_scope="function"),
              pytest.mark.timeout(600)]

FIRST_OUTPUT_S = 240
"""A cold JVM, the connector's classes and the model loaded in each Python worker: a minute
or more on 2 cores, several when other work keeps them busy."""
SAME_FIELDS = ("subject", "model", "prediction", "scores", "features")
"""Of a scored event, all but `time` (each input topic stamps its own copies) and
`scored_at`."""


def _topics(prefix: str) -> list[str]:
    return [f"{prefix}.{kind}" for kind in ("input", "output", "deadletter")]


@pytest.fixture(scope="module")
def shared_job(kafka: KafkaBroker, mlflow_registry: Registry,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, SparkJob]]:
    """One running job for the tests that need no crash: its topic prefix and process."""
    prefix = f"spark{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topics(kafka.bootstrap, _topics(prefix)))
    workdir = tmp_path_factory.mktemp("spark-shared")
    job = SparkJob(job_env(kafka.bootstrap, prefix, mlflow_registry, workdir / "checkpoint"),
                   workdir / "spark.log")
    job.start()
    try:
        yield prefix, job
    finally:
        job.stop()


async def test_every_event_comes_out_once_scored_as_the_trio_scores_it(
        shared_job: tuple[str, SparkJob], kafka: KafkaBroker, mlflow_registry: Registry,
        topic_prefix: str, tmp_path: Path) -> None:
    prefix, job = shared_job
    items = events(10_000, seed=301)
    wanted = {item["transaction_id"] for item in items}
    trio = build_pipeline(kafka.bootstrap, mlflow_registry, topic_prefix, SCHEMA_PATH, tmp_path)
    await create_topics(kafka.bootstrap, _topics(topic_prefix))
    await asyncio.to_thread(trio.start)
    try:
        await produce_json(kafka.bootstrap, f"{prefix}.input", items)
        await produce_json(kafka.bootstrap, trio.input_topic, items)
        async with TopicReader(kafka.bootstrap, f"{prefix}.output") as output:
            spark = await output.until(lambda r: job.alive() and ids(r) >= wanted,
                                       FIRST_OUTPUT_S + 60, "all 10,000 ids from Spark")
        async with TopicReader(kafka.bootstrap, trio.output_topic) as output:
            scored = await output.until(lambda r: ids(r) >= wanted, 120,
                                        "all 10,000 ids from the trio")
    finally:
        await asyncio.to_thread(trio.stop)
    assert ids(spark) == wanted
    assert len(spark) == len(wanted), "no failure happened, so no duplicates either"
    by_trio = {record["id"]: record for record in scored}
    differ = [record["id"] for record in spark
              if any(record[field] != by_trio[record["id"]][field] for field in SAME_FIELDS)]
    assert differ == []
    assert set(spark[0]) == set(scored[0])
    async with TopicReader(kafka.bootstrap, f"{prefix}.deadletter") as deadletters:
        await deadletters.poll()
    assert not [letter for letter in deadletters.records
                if base64.b64decode(letter["original"]).startswith(b'{"transaction_id"')]


async def test_malformed_records_are_dead_lettered_with_the_readers_reasons(
        shared_job: tuple[str, SparkJob], kafka: KafkaBroker) -> None:
    prefix, job = shared_job
    good = events(3, seed=302)
    broken_schema = [dict(good[0], transaction_id="bad-hour", hour=25),
                     {k: v for k, v in good[1].items() if k != "amount"}]
    oversized = orjson.dumps(dict(good[2], transaction_id="big", notes="x" * 5000))
    bad_values = [b"{not json", b"[1, 2, 3]", b"", *map(orjson.dumps, broken_schema),
                  oversized]
    await produce(kafka.bootstrap, f"{prefix}.input", bad_values)

    async with TopicReader(kafka.bootstrap, f"{prefix}.deadletter") as deadletters:
        letters = await deadletters.until(
            lambda r: job.alive() and len(r) >= len(bad_values), FIRST_OUTPUT_S,
            "every bad record dead-lettered")
    reasons = Counter(letter["reason"] for letter in letters)
    assert reasons == {"not_json": 1, "not_object": 1, "empty": 1, "schema_violation": 2,
                       "too_large": 1}
    assert sorted(base64.b64decode(letter["original"]) for letter in letters) \
        == sorted(bad_values)
    hour = next(x for x in letters if base64.b64decode(x["original"]) == bad_values[3])
    assert hour["detail"].startswith("hour:")
    assert all(letter["source"]["stream"] == f"{prefix}.input" for letter in letters)
    assert all(isinstance(letter["source"]["offset"], int) for letter in letters)
    assert all(letter["original_sha256"] and not letter["truncated"] for letter in letters)


async def test_a_job_killed_mid_stream_resumes_from_its_checkpoint_losing_nothing(
        kafka: KafkaBroker, mlflow_registry: Registry, topic_prefix: str,
        tmp_path: Path) -> None:
    per_batch = 300
    items = events(3_000, seed=303)
    wanted = {item["transaction_id"] for item in items}
    await create_topics(kafka.bootstrap, _topics(topic_prefix))
    await produce_json(kafka.bootstrap, f"{topic_prefix}.input", items)
    env = job_env(kafka.bootstrap, topic_prefix, mlflow_registry, tmp_path / "checkpoint")
    # Small micro-batches, one a second, on the first run, so the kill lands mid-stream;
    # the restart replays the interrupted one as it was logged, then takes the rest at once.
    first = SparkJob({**env, "AGOGOSML_SPARK_MAX_OFFSETS_PER_TRIGGER": str(per_batch),
                      "AGOGOSML_SPARK_TRIGGER_INTERVAL_MS": "1000"}, tmp_path / "spark-1.log")
    first.start()
    try:
        async with TopicReader(kafka.bootstrap, f"{topic_prefix}.output") as output:
            await output.until(lambda r: first.alive() and len(r) >= per_batch,
                               FIRST_OUTPUT_S, "the first micro-batch")
            first.kill()
            assert first.exit_code() == -9
            await output.poll()
            before = len(ids(output.records))
            assert before < len(wanted), "the kill came after the whole input was done"
            second = SparkJob(env, tmp_path / "spark-2.log")
            second.start()
            try:
                records = await output.until(
                    lambda r: second.alive() and ids(r) >= wanted, FIRST_OUTPUT_S,
                    "every id after the restart")
            finally:
                second.stop()
    finally:
        first.stop()
    assert ids(records) == wanted
    replayed = len(records) - len(wanted)
    # The restart resumed from the checkpoint: at most the micro-batch the crash
    # interrupted came out twice, not the input from its start.
    assert replayed <= per_batch, replayed
