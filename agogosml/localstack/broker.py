"""A single-node Apache Kafka broker in KRaft mode, run with the machine's Java from the
jars `scripts/fetch-kafka.sh` resolved from Maven Central."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from agogosml.errors import ConfigurationError

KAFKA_VERSION = "4.1.1"
DEFAULT_LIBS = Path.home() / ".cache" / "agogosml" / f"kafka-{KAFKA_VERSION}" / "libs"


def kafka_libs() -> Path:
    libs = Path(os.environ.get("AGOGOSML_KAFKA_LIBS", DEFAULT_LIBS))
    if not any(libs.glob("kafka_2.13-*.jar")):
        raise ConfigurationError(
            f"no Kafka broker jars in {libs}; run scripts/fetch-kafka.sh (make kafka) first"
        )
    return libs


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class KafkaBroker:
    """Start, stop (gracefully or by kill -9) and restart a broker on fixed ports;
    its data directory survives restarts, like a real broker's disk."""

    def __init__(self, data_dir: Path, port: int | None = None,
                 controller_port: int | None = None, heap: str = "512m") -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.controller_port = controller_port or free_port()
        self.heap = heap
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        config = self.data_dir / "server.properties"
        config.write_text("\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{self.port},"
            f"CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={self.data_dir / 'logs'}",
            "num.partitions=3",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=3",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            "",
        ]))
        return config

    def _java(self, *args: str) -> list[str]:
        java = shutil.which("java") or "java"
        return [java, f"-Xmx{self.heap}", "-Xms128m", "-XX:+UseG1GC",
                "-cp", f"{kafka_libs()}/*", *args]

    def start(self, timeout_s: float = 60.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        if not (self.data_dir / "logs" / "meta.properties").exists():
            subprocess.run(
                self._java("kafka.tools.StorageTool", "format", "-t", uuid.uuid4().hex[:22],
                           "-c", str(config), "--ignore-formatted"),
                check=True, capture_output=True,
            )
        with (self.data_dir / "broker.log").open("ab") as log:
            self.process = subprocess.Popen(self._java("kafka.Kafka", str(config)),
                                            stdout=log, stderr=subprocess.STDOUT)
        self.wait_ready(timeout_s)

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"Kafka exited with {self.process.returncode}; "
                                   f"see {self.data_dir / 'broker.log'}")
            if asyncio.run(_answers_metadata(self.bootstrap)):
                return
            time.sleep(0.2)  # polling the broker until it answers
        raise TimeoutError(f"Kafka on {self.bootstrap} not ready after {timeout_s}s")

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


async def _answers_metadata(bootstrap: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
    try:
        await admin.start()
        await admin.list_topics()
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await admin.close()
    return True
