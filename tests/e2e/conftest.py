"""A whole pipeline as three real processes on a shared Kafka broker, per test; and a
broker of a test's own, for tests that kill it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from agogosml.localstack.broker import KafkaBroker, free_port
from agogosml.localstack.processes import ServiceProcess
from agogosml.localstack.tokens import pipeline_token_env
from agogosml.services.input_reader.settings import ReaderSettings
from tests.conftest import Registry
from tests.servers import PIPELINE_TOKEN

READER_BATCH_MAX_SIZE = 50
READER_MAX_IN_FLIGHT: int = ReaderSettings.model_fields["max_in_flight"].default
REDELIVERABLE_PER_CRASH = (READER_MAX_IN_FLIGHT + 2) * READER_BATCH_MAX_SIZE
"""What one crash can send through the pipeline twice: the batches in flight, one more
fetched just as consumption paused, and one whose commit was under way."""


@dataclass
class Pipeline:
    bootstrap: str
    input_topic: str
    output_topic: str
    deadletter_topic: str
    writer: ServiceProcess
    app: ServiceProcess
    reader: ServiceProcess

    def start(self) -> None:
        for service in (self.writer, self.app, self.reader):
            service.start()
        for service in (self.writer, self.app, self.reader):
            service.wait_ready()

    def stop(self) -> None:
        for service in (self.reader, self.app, self.writer):
            service.terminate(timeout_s=30)

    @property
    def consumer_group(self) -> str:
        return self.reader.env["AGOGOSML_READER_CONSUMER_GROUP"]


def writer_process(bootstrap: str, output_topic: str, log_dir: Path) -> ServiceProcess:
    port = free_port()
    return ServiceProcess("output_writer", port, {
        "AGOGOSML_WRITER_PORT": str(port),
        "AGOGOSML_WRITER_SINK": "kafka",
        "AGOGOSML_WRITER_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "AGOGOSML_WRITER_OUTPUT_STREAM": output_topic,
        **pipeline_token_env(PIPELINE_TOKEN.get_secret_value()),
    }, log_dir)


def app_process(registry: Registry, writer: ServiceProcess, log_dir: Path) -> ServiceProcess:
    port = free_port()
    return ServiceProcess("app", port, {
        "AGOGOSML_APP_PORT": str(port),
        "AGOGOSML_APP_MODEL_URI": registry.model_uri,
        "AGOGOSML_APP_MLFLOW_TRACKING_URI": registry.tracking_uri,
        "AGOGOSML_APP_WRITER_URL": writer.url,
        "AGOGOSML_APP_WRITER_TIMEOUT_S": "15",
        **pipeline_token_env(PIPELINE_TOKEN.get_secret_value()),
    }, log_dir)


def reader_process(bootstrap: str, topic_prefix: str, app: ServiceProcess, schema_path: Path,
                   log_dir: Path, label: str | None = None) -> ServiceProcess:
    """A reader of `<prefix>.input` in the group `<prefix>-reader`; readers made with the
    same prefix share the group (give each its own `label`)."""
    port = free_port()
    return ServiceProcess("input_reader", port, {
        "AGOGOSML_READER_PORT": str(port),
        "AGOGOSML_READER_SOURCE": "kafka",
        "AGOGOSML_READER_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "AGOGOSML_READER_INPUT_STREAM": f"{topic_prefix}.input",
        "AGOGOSML_READER_DEADLETTER_STREAM": f"{topic_prefix}.deadletter",
        "AGOGOSML_READER_CONSUMER_GROUP": f"{topic_prefix}-reader",
        "AGOGOSML_READER_APP_URL": app.url,
        "AGOGOSML_READER_SCHEMA_PATH": str(schema_path),
        "AGOGOSML_READER_ID_FIELD": "transaction_id",
        "AGOGOSML_READER_SUBJECT_FIELD": "customer_id",
        "AGOGOSML_READER_MAX_RECORD_BYTES": "4096",
        "AGOGOSML_READER_BATCH_MAX_SIZE": str(READER_BATCH_MAX_SIZE),
        "AGOGOSML_READER_RETRY_MAX_MS": "1000",
        "AGOGOSML_READER_REQUEST_TIMEOUT_S": "20",
        **pipeline_token_env(PIPELINE_TOKEN.get_secret_value()),
    }, log_dir, label)


def build_pipeline(bootstrap: str, registry: Registry, topic_prefix: str, schema_path: Path,
                   log_dir: Path) -> Pipeline:
    """Writer, app and reader on `<prefix>.input|output|deadletter`, not yet started."""
    topics = {kind: f"{topic_prefix}.{kind}" for kind in ("input", "output", "deadletter")}
    writer = writer_process(bootstrap, topics["output"], log_dir)
    app = app_process(registry, writer, log_dir)
    reader = reader_process(bootstrap, topic_prefix, app, schema_path, log_dir)
    return Pipeline(bootstrap, topics["input"], topics["output"], topics["deadletter"],
                    writer, app, reader)


@pytest.fixture
def pipeline(kafka: KafkaBroker, mlflow_registry: Registry, topic_prefix: str,
             schema_path: Path, tmp_path: Path) -> Iterator[Pipeline]:
    running = build_pipeline(kafka.bootstrap, mlflow_registry, topic_prefix, schema_path,
                             tmp_path)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def own_kafka(tmp_path: Path) -> Iterator[KafkaBroker]:
    """A broker for this test alone, so it can be killed without touching the shared one."""
    broker = KafkaBroker(tmp_path / "own-kafka")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop(timeout_s=15)


def assigned_partitions(reader: ServiceProcess) -> list[str]:
    """The partitions a reader logged as assigned most recently (none before its first
    assignment), from the JSON lines in its log."""
    latest: list[str] = []
    for line in reader.log_path.read_bytes().splitlines():
        if b"partitions assigned" not in line:
            continue
        with contextlib.suppress(orjson.JSONDecodeError):
            entry = orjson.loads(line)
            if entry.get("msg") == "partitions assigned":
                latest = [str(p) for p in entry.get("partitions", [])]
    return latest


async def metric(service: ServiceProcess, name: str) -> float:
    """An unlabelled sample from the service's /metrics; 0 if it is not there (yet)."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{service.url}/metrics", timeout=5)).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0
