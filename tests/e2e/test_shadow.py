"""Shadow scoring end to end over Kafka: the reader mirrors a stable sample to a preview
app, whose scores go to the shadow topic only, while production gets every event; the
preview app reports its agreement with production."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agogosml.demo.data import events
from agogosml.localstack.broker import KafkaBroker, free_port
from agogosml.localstack.processes import ServiceProcess
from agogosml.localstack.tokens import pipeline_token_env
from agogosml.services.input_reader.shadow import sampled
from tests.conftest import Registry
from tests.kafka_helpers import TopicReader, create_topics, ids, produce_json
from tests.servers import PIPELINE_TOKEN

RATIO = 0.3
TOKENS = pipeline_token_env(PIPELINE_TOKEN.get_secret_value())


@pytest.fixture
def shadow_stack(kafka: KafkaBroker, mlflow_registry: Registry, topic_prefix: str,
                 schema_path: Path, tmp_path: Path) -> Iterator[dict[str, ServiceProcess]]:
    topics = {kind: f"{topic_prefix}.{kind}" for kind in ("input", "output", "shadow",
                                                          "deadletter")}
    ports = {name: free_port() for name in ("writer", "shadow_writer", "app", "preview",
                                            "reader")}

    def writer(name: str, stream: str) -> ServiceProcess:
        return ServiceProcess("output_writer", ports[name], {
            "AGOGOSML_WRITER_PORT": str(ports[name]), "AGOGOSML_WRITER_SINK": "kafka",
            "AGOGOSML_WRITER_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
            "AGOGOSML_WRITER_OUTPUT_STREAM": stream, **TOKENS}, tmp_path / name)

    def app(name: str, shadow_writer: ServiceProcess) -> ServiceProcess:
        return ServiceProcess("app", ports[name], {
            "AGOGOSML_APP_PORT": str(ports[name]),
            "AGOGOSML_APP_MODEL_URI": mlflow_registry.model_uri,
            "AGOGOSML_APP_MLFLOW_TRACKING_URI": mlflow_registry.tracking_uri,
            "AGOGOSML_APP_WRITER_URL": services["writer"].url,
            "AGOGOSML_APP_SHADOW_WRITER_URL": shadow_writer.url, **TOKENS}, tmp_path / name)

    services = {"writer": writer("writer", topics["output"]),
                "shadow_writer": writer("shadow_writer", topics["shadow"])}
    services["app"] = app("app", services["shadow_writer"])
    services["preview"] = app("preview", services["shadow_writer"])
    services["reader"] = ServiceProcess("input_reader", ports["reader"], {
        "AGOGOSML_READER_PORT": str(ports["reader"]), "AGOGOSML_READER_SOURCE": "kafka",
        "AGOGOSML_READER_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
        "AGOGOSML_READER_INPUT_STREAM": topics["input"],
        "AGOGOSML_READER_DEADLETTER_STREAM": topics["deadletter"],
        "AGOGOSML_READER_CONSUMER_GROUP": f"{topic_prefix}-reader",
        "AGOGOSML_READER_APP_URL": services["app"].url,
        "AGOGOSML_READER_SHADOW_URL": services["preview"].url,
        "AGOGOSML_READER_SHADOW_SAMPLE_RATIO": str(RATIO),
        "AGOGOSML_READER_SCHEMA_PATH": str(schema_path),
        "AGOGOSML_READER_ID_FIELD": "transaction_id", **TOKENS}, tmp_path / "reader")
    asyncio.run(create_topics(kafka.bootstrap, topics.values()))
    try:
        for service in services.values():
            service.start()
        for service in services.values():
            service.wait_ready()
        yield services
    finally:
        for service in reversed(list(services.values())):
            service.terminate(timeout_s=30)


async def metric(client: httpx.AsyncClient, service: ServiceProcess, name: str) -> float:
    for line in (await client.get(f"{service.url}/metrics")).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


async def test_a_stable_sample_is_shadow_scored_apart_from_production(
        shadow_stack: dict[str, ServiceProcess], kafka: KafkaBroker, topic_prefix: str) -> None:
    items = events(1_000, seed=107)
    everything = {item["transaction_id"] for item in items}
    sample = {i for i in everything if sampled(i, RATIO)}
    for start in range(0, len(items), 100):
        await produce_json(kafka.bootstrap, f"{topic_prefix}.input", items[start:start + 100])

    async with TopicReader(kafka.bootstrap, f"{topic_prefix}.output") as output:
        production = await output.until(lambda r: ids(r) >= everything, 90, "every id")
    reader, preview = shadow_stack["reader"], shadow_stack["preview"]
    async with httpx.AsyncClient() as client, \
            TopicReader(kafka.bootstrap, f"{topic_prefix}.shadow") as shadow:
        # Mirroring never waits: a sample the preview app could not take in time is skipped
        # and counted, so "all of the sample" means mirrored plus skipped.
        async with asyncio.timeout(90):
            while True:
                skipped = await metric(client, reader, "agogosml_reader_shadow_skipped_total")
                compared = await metric(client, preview, "agogosml_app_shadow_compared_total")
                await shadow.poll()
                if len(ids(shadow.records)) + skipped >= len(sample) \
                        and compared >= len(ids(shadow.records)):
                    break
        agreed = await metric(client, preview, "agogosml_app_shadow_agreed_total")

    mirrored = ids(shadow.records)
    assert ids(production) == everything
    assert mirrored <= sample, "nothing outside the sample is shadow scored"
    assert mirrored, "the preview app scored some of the sample"
    assert not mirrored & (everything - sample)
    assert 0.2 < len(sample) / len(everything) < 0.4
    assert compared == agreed == len(mirrored), "the same model agrees with itself"
