"""What the benchmark runs on: a Kafka broker and MLflow with the demo model (once per
run), and per scenario either the three pipeline services or the raw pass-through."""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Protocol

import httpx
from prometheus_client.parser import text_string_to_metric_families

from agogosml.localstack.broker import KafkaBroker, free_port
from agogosml.localstack.processes import ServiceProcess
from agogosml.localstack.tokens import new_pipeline_token, pipeline_token_env
from agogosml.services.registry import ENV_PREFIXES
from bench.kafka_io import Topics
from bench.procs import Child

REPO = Path(__file__).resolve().parent.parent
SCHEMA = REPO / "agogosml" / "demo" / "transaction.schema.json"
TRAINING_ROWS = 5_000
BENCH_TOKEN = new_pipeline_token()


def forget_service_settings() -> None:
    """Drop service settings inherited from the caller's environment: the services get
    exactly the benchmark's settings (and their defaults), whoever runs it."""
    for name in [name for name in os.environ if name.startswith(ENV_PREFIXES)]:
        del os.environ[name]


def _quiet(log_path: Path) -> None:
    """Send the training process's output (MLflow talks) to a log file."""
    with log_path.open("ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)


def _train(tracking_uri: str, artifacts: Path) -> str:
    """Runs in a separate process, so MLflow is never imported into the benchmark's."""
    from agogosml.demo.train import train_and_register

    demo = train_and_register(tracking_uri, artifacts, rows=TRAINING_ROWS)
    return f"models:/{demo.model_name}@champion"


@dataclass(frozen=True)
class Infrastructure:
    broker: KafkaBroker
    tracking_uri: str
    model_uri: str


def start_infrastructure(workdir: Path, broker: KafkaBroker) -> Infrastructure:
    """Start the broker while the demo model is trained and registered in MLflow on SQLite."""
    mlflow_dir = workdir / "mlflow"
    mlflow_dir.mkdir(parents=True)
    tracking_uri = f"sqlite:///{mlflow_dir / 'mlflow.db'}"
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"),
                             initializer=_quiet, initargs=(workdir / "training.log",)) as pool:
        training = pool.submit(_train, tracking_uri, mlflow_dir / "artifacts")
        broker.start()
        model_uri = training.result(timeout=300)
    return Infrastructure(broker, tracking_uri, model_uri)


class ConsumerSide(Protocol):
    """What consumes the input topic and fills the output topic in a scenario."""

    def start(self) -> None: ...
    def check_alive(self) -> None: ...
    def pids(self) -> dict[str, int]: ...
    def metrics(self) -> dict[str, float]: ...
    def stop(self) -> None: ...


class Pipeline:
    """output_writer, app and input_reader as child processes for one scenario's topics;
    with `instances` > 1, that many readers (one consumer group) each in front of its own
    app, every app writing through the one writer."""

    def __init__(self, infra: Infrastructure, topics: Topics, log_dir: Path,
                 reader_settings: Mapping[str, str], instances: int = 1) -> None:
        bootstrap = infra.broker.bootstrap
        tokens = pipeline_token_env(BENCH_TOKEN)
        writer_port = free_port()
        self.writer = ServiceProcess("output_writer", writer_port, {
            "AGOGOSML_WRITER_PORT": str(writer_port),
            "AGOGOSML_WRITER_SINK": "kafka",
            "AGOGOSML_WRITER_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "AGOGOSML_WRITER_OUTPUT_STREAM": topics.output,
            **tokens,
        }, log_dir)
        self.apps: list[ServiceProcess] = []
        self.readers: list[ServiceProcess] = []
        for number in range(1, instances + 1):
            suffix = "" if number == 1 else f".{number}"
            app_port, reader_port = free_port(), free_port()
            app = ServiceProcess("app", app_port, {
                "AGOGOSML_APP_PORT": str(app_port),
                "AGOGOSML_APP_MODEL_URI": infra.model_uri,
                "AGOGOSML_APP_MLFLOW_TRACKING_URI": infra.tracking_uri,
                "AGOGOSML_APP_WRITER_URL": self.writer.url,
                **tokens,
            }, log_dir, label=f"app{suffix}")
            self.apps.append(app)
            self.readers.append(ServiceProcess("input_reader", reader_port, {
                "AGOGOSML_READER_PORT": str(reader_port),
                "AGOGOSML_READER_SOURCE": "kafka",
                "AGOGOSML_READER_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "AGOGOSML_READER_INPUT_STREAM": topics.input,
                "AGOGOSML_READER_DEADLETTER_STREAM": topics.deadletter,
                "AGOGOSML_READER_CONSUMER_GROUP": topics.group,
                "AGOGOSML_READER_APP_URL": app.url,
                "AGOGOSML_READER_SCHEMA_PATH": str(SCHEMA),
                "AGOGOSML_READER_ID_FIELD": "transaction_id",
                "AGOGOSML_READER_SUBJECT_FIELD": "customer_id",
                **reader_settings,
                **tokens,
            }, log_dir, label=f"input_reader{suffix}"))

    @property
    def services(self) -> tuple[ServiceProcess, ...]:
        return (self.writer, *self.apps, *self.readers)

    def start(self) -> None:
        """Writer and apps first, so that the readers' first batches find them ready."""
        for service in (self.writer, *self.apps):
            service.start()
        self.writer.wait_ready()
        for app in self.apps:
            app.wait_ready(timeout_s=120)
        for reader in self.readers:
            reader.start()
        for reader in self.readers:
            reader.wait_ready()

    def check_alive(self) -> None:
        for service in self.services:
            if service.process is not None and service.process.poll() is not None:
                raise RuntimeError(f"{service.label} exited ({service.process.returncode}); "
                                   f"see {service.log_path}")

    def pids(self) -> dict[str, int]:
        """Per process, by label (`app`, `app.2`, ...)."""
        return {service.label: service.process.pid for service in self.services
                if service.process is not None}

    def stop(self) -> None:
        for service in reversed(self.services):
            service.terminate(timeout_s=30)

    def metrics(self) -> dict[str, float]:
        """Flattened samples of every service's /metrics, e.g.
        `input_reader:agogosml_reader_batch_size_sum`, summed over the instances of a
        service (so that sum / count is still the mean over all of them)."""
        samples: dict[str, float] = {}
        for service in self.services:
            text = httpx.get(f"{service.url}/metrics", timeout=5.0).text
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                    name = f"{service.name}:{sample.name}" + (f"{{{labels}}}" if labels else "")
                    samples[name] = samples.get(name, 0.0) + sample.value
        return samples


class PassThrough:
    """The raw Kafka pass-through (bench.passthrough) as a child process."""

    def __init__(self, infra: Infrastructure, topics: Topics, log_dir: Path) -> None:
        self.child = Child("passthrough", [
            "bench.passthrough", infra.broker.bootstrap, topics.input, topics.output,
            topics.group,
        ], log_dir)

    def start(self) -> None:
        self.child.start()

    def check_alive(self) -> None:
        self.child.check_alive()

    def pids(self) -> dict[str, int]:
        return {} if self.child.pid is None else {"passthrough": self.child.pid}

    def stop(self) -> None:
        self.child.terminate()

    def metrics(self) -> dict[str, float]:
        return {}
