"""A whole pipeline as three real processes on a shared Kafka broker, per test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agogosml.localstack.broker import KafkaBroker, free_port
from agogosml.localstack.processes import ServiceProcess
from tests.conftest import Registry


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


@pytest.fixture
def pipeline(kafka: KafkaBroker, mlflow_registry: Registry, topic_prefix: str,
             schema_path: Path, tmp_path: Path) -> Iterator[Pipeline]:
    ports = {name: free_port() for name in ("writer", "app", "reader")}
    topics = {kind: f"{topic_prefix}.{kind}" for kind in ("input", "output", "deadletter")}
    writer = ServiceProcess("output_writer", ports["writer"], {
        "AGOGOSML_WRITER_PORT": str(ports["writer"]),
        "AGOGOSML_WRITER_SINK": "kafka",
        "AGOGOSML_WRITER_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
        "AGOGOSML_WRITER_OUTPUT_STREAM": topics["output"],
    }, tmp_path)
    app = ServiceProcess("app", ports["app"], {
        "AGOGOSML_APP_PORT": str(ports["app"]),
        "AGOGOSML_APP_MODEL_URI": mlflow_registry.model_uri,
        "AGOGOSML_APP_MLFLOW_TRACKING_URI": mlflow_registry.tracking_uri,
        "AGOGOSML_APP_WRITER_URL": writer.url,
        "AGOGOSML_APP_WRITER_TIMEOUT_S": "15",
    }, tmp_path)
    reader = ServiceProcess("input_reader", ports["reader"], {
        "AGOGOSML_READER_PORT": str(ports["reader"]),
        "AGOGOSML_READER_SOURCE": "kafka",
        "AGOGOSML_READER_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
        "AGOGOSML_READER_INPUT_STREAM": topics["input"],
        "AGOGOSML_READER_DEADLETTER_STREAM": topics["deadletter"],
        "AGOGOSML_READER_CONSUMER_GROUP": f"{topic_prefix}-reader",
        "AGOGOSML_READER_APP_URL": app.url,
        "AGOGOSML_READER_SCHEMA_PATH": str(schema_path),
        "AGOGOSML_READER_ID_FIELD": "transaction_id",
        "AGOGOSML_READER_SUBJECT_FIELD": "customer_id",
        "AGOGOSML_READER_MAX_RECORD_BYTES": "4096",
        "AGOGOSML_READER_BATCH_MAX_SIZE": "50",
        "AGOGOSML_READER_RETRY_MAX_MS": "1000",
        "AGOGOSML_READER_REQUEST_TIMEOUT_S": "20",
    }, tmp_path)
    running = Pipeline(kafka.bootstrap, topics["input"], topics["output"], topics["deadletter"],
                       writer, app, reader)
    try:
        yield running
    finally:
        running.stop()
