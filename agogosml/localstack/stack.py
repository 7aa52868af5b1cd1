"""`make run`: the whole pipeline on local defaults, until Ctrl-C.

Starts a KRaft Kafka broker, creates the topics, trains and registers the demo
model if MLflow does not have it, starts output_writer, app and input_reader,
then a demo producer, prints where to look, and stops everything on Ctrl-C. Meanwhile a
supervisor (agogosml/localstack/supervisor.py) restarts whatever dies: the broker, a
service or the producer, each with a bounded budget, and says so.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from types import FrameType

from agogosml.demo.train import dataset_path
from agogosml.localstack.broker import KafkaBroker
from agogosml.localstack.processes import ChildProcess, ServiceProcess
from agogosml.localstack.supervisor import Supervisor
from agogosml.localstack.tokens import new_pipeline_token, pipeline_token_env, save_token
from agogosml.privacy.keyfile import ensure_keyring_file
from agogosml.services.registry import SERVICES
from agogosml.streaming.topics import ensure_topics

VAR = Path(os.environ.get("AGOGOSML_VAR_DIR", "var"))
TOKEN_FILE = VAR / "pipeline-token"
KEYRING_FILE = VAR / "privacy" / "keyring.yaml"
"""The run's PII keys, made on the first run and kept: new keys would change every
pseudonym, and destroying them is how a local stack's encrypted data is shredded."""
KEK_FILE = VAR / "privacy" / "kek.yaml"
"""The key-encryption key of the subjects' data keys (a keyring of its own)."""
PRIVACY_STORE_URL = f"sqlite:///{VAR}/privacy/privacy.db"
"""Lineage, the forget journal and the subjects' keys."""
SHADOW_STREAM = "agogosml.shadow"
LABELS_STREAM = "agogosml.labels"
RETRAIN_PORT = int(os.environ.get("AGOGOSML_RETRAIN_PORT", "8007"))
DEFAULT_PORTS = {service.name: service.port for service in reversed(SERVICES)}
"""In start order: each one's readiness needs the ones before it."""
PORT_VARIABLES = {service.name: service.port_variable for service in reversed(SERVICES)}


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def local_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def pipeline_env(bootstrap: str, tracking_uri: str,
                 ports: Mapping[str, int] = DEFAULT_PORTS) -> dict[str, str]:
    """Settings the three services share in the local stack (each can still be overridden)."""
    schema = resources.files("agogosml.demo").joinpath("transaction.schema.json")
    defaults = {
        "AGOGOSML_READER_SOURCE": "kafka",
        "AGOGOSML_READER_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "AGOGOSML_READER_SCHEMA_PATH": str(schema),
        "AGOGOSML_READER_ID_FIELD": "transaction_id",
        "AGOGOSML_READER_SUBJECT_FIELD": "customer_id",
        "AGOGOSML_READER_PRIVACY_POLICY_PATH": str(privacy_policy()),
        "AGOGOSML_READER_PRIVACY_KEYRING_PATH": str(KEYRING_FILE),
        "AGOGOSML_READER_SUBJECT_KEYS_URL": PRIVACY_STORE_URL,
        "AGOGOSML_READER_SUBJECT_KEYS_KEK_PATH": str(KEK_FILE),
        "AGOGOSML_WRITER_SINK": "kafka",
        "AGOGOSML_WRITER_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "AGOGOSML_APP_MLFLOW_TRACKING_URI": tracking_uri,
        "AGOGOSML_APP_WRITER_URL": local_url(ports["output_writer"]),
        "AGOGOSML_READER_APP_URL": local_url(ports["app"]),
        "AGOGOSML_MONITOR_SOURCE": "kafka",
        "AGOGOSML_MONITOR_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "AGOGOSML_MONITOR_TRACKING_URI": tracking_uri,
        "AGOGOSML_MONITOR_STORE_URL": f"sqlite:///{VAR}/monitor/events.db",
        "AGOGOSML_MONITOR_SCRAPE_URLS": json.dumps({
            name: f"{local_url(ports[name])}/metrics"
            for name in ("input_reader", "app", "output_writer")}),
        "AGOGOSML_MONITOR_RULES_PATH": str(resources.files("agogosml.localstack").joinpath(
            "monitor-rules.yaml")),
        "AGOGOSML_MONITOR_RETRAIN_URL": local_url(RETRAIN_PORT),
        "AGOGOSML_MONITOR_GDPR_ENABLED": "true",
        "AGOGOSML_GDPR_STORE_URL": PRIVACY_STORE_URL,
        "AGOGOSML_GDPR_TRACKING_URI": tracking_uri,
        "AGOGOSML_GDPR_KEYRING_PATH": str(KEYRING_FILE),
        "AGOGOSML_GDPR_KEK_PATH": str(KEK_FILE),
    }
    return {name: os.environ.get(name, value) for name, value in defaults.items()}


def privacy_policy() -> Path:
    return Path(str(resources.files("agogosml.localstack").joinpath("privacy-policy.yaml")))


def shadow_services(env: dict[str, str], logs: Path) -> list[ServiceProcess]:
    """With AGOGOSML_DEMO_SHADOW=1: a preview app (serving AGOGOSML_PREVIEW_MODEL_URI,
    e.g. models:/demo@challenger after a retrain) that scores a mirrored 10% sample, and
    a shadow writer to agogosml.shadow. The reader is pointed at them."""
    preview_port = int(_env("AGOGOSML_PREVIEW_PORT", "8003"))
    shadow_port = int(_env("AGOGOSML_SHADOW_WRITER_PORT", "8004"))
    env.update({
        "AGOGOSML_READER_SHADOW_URL": local_url(preview_port),
        "AGOGOSML_READER_SHADOW_SAMPLE_RATIO": _env("AGOGOSML_READER_SHADOW_SAMPLE_RATIO",
                                                    "0.1"),
        "AGOGOSML_APP_SHADOW_WRITER_URL": local_url(shadow_port),
    })
    shadow_writer_env = {**env, "AGOGOSML_WRITER_PORT": str(shadow_port),
                         "AGOGOSML_WRITER_OUTPUT_STREAM": SHADOW_STREAM}
    preview_env = {**env, "AGOGOSML_APP_PORT": str(preview_port),
                   "AGOGOSML_APP_MODEL_URI": _env("AGOGOSML_PREVIEW_MODEL_URI",
                                                  "models:/demo@champion")}
    return [ServiceProcess("output_writer", shadow_port, shadow_writer_env, logs,
                           label="shadow_writer"),
            ServiceProcess("app", preview_port, preview_env, logs, label="preview_app")]


def producer_command() -> list[str]:
    """The demo producer, with its labels sent late to the feedback stream, and a drift
    from the N-th event on when AGOGOSML_DEMO_DRIFT_AFTER=N (`make run DRIFT_AFTER=N`)."""
    command = [sys.executable, "-m", "agogosml.cli", "produce-demo",
               "--rate", _env("AGOGOSML_DEMO_RATE", "20"),
               "--labels-stream", _env("AGOGOSML_MONITOR_LABELS_STREAM", LABELS_STREAM)]
    drift_after = _env("AGOGOSML_DEMO_DRIFT_AFTER", "")
    if drift_after:
        command += ["--drift-after", drift_after,
                    "--drift-sigmas", _env("AGOGOSML_DEMO_DRIFT_SIGMAS", "1.0")]
    return command


class BrokerChild:
    """The broker as the supervisor sees it; `start` returns once the broker answers."""

    label = "kafka"

    def __init__(self, broker: KafkaBroker) -> None:
        self.broker = broker
        self.log_path = broker.data_dir / "broker.log"

    def start(self) -> None:
        self.broker.start()

    def exit_code(self) -> int | None:
        process = self.broker.process
        return None if process is None else process.poll()


def main() -> None:
    port = int(_env("AGOGOSML_KAFKA_PORT", "9092"))
    broker = KafkaBroker(VAR / "kafka", port=port,
                         controller_port=int(_env("AGOGOSML_KAFKA_CONTROLLER_PORT", "9093")))
    tracking_uri = _env("AGOGOSML_APP_MLFLOW_TRACKING_URI", f"sqlite:///{VAR}/mlflow/mlflow.db")
    ports = {name: int(_env(PORT_VARIABLES[name], str(port)))
             for name, port in DEFAULT_PORTS.items()}
    env = pipeline_env(broker.bootstrap, tracking_uri, ports)
    token = os.environ.get("AGOGOSML_PIPELINE_TOKEN") or new_pipeline_token()
    save_token(token, TOKEN_FILE)
    if ensure_keyring_file(KEYRING_FILE) | ensure_keyring_file(KEK_FILE):
        print(f"made the PII keys of this stack in {KEYRING_FILE.parent}", flush=True)
    env.update(pipeline_token_env(token))
    env.update(AGOGOSML_RETRAIN_TOKEN=token, AGOGOSML_MONITOR_RETRAIN_TOKEN=token)
    artifacts = VAR / "mlflow" / "artifacts"
    env.update(AGOGOSML_GDPR_ARTIFACTS=str(artifacts),
               AGOGOSML_GDPR_SNAPSHOTS=json.dumps([str(dataset_path(artifacts))]))
    logs = VAR / "logs"
    shadow = shadow_services(env, logs) if _env("AGOGOSML_DEMO_SHADOW", "") == "1" else []
    os.environ.update(env)
    monitor, writer, app, reader = (ServiceProcess(name, port, env, logs)
                                    for name, port in ports.items())
    services = [monitor, writer, *shadow, app, reader]
    producer = ChildProcess("producer", producer_command(), env, logs / "producer.log")
    retrainer = ChildProcess("retrain_server", [
        sys.executable, "-m", "agogosml.cli", "retrain-server", "--port", str(RETRAIN_PORT),
        "--tracking-uri", tracking_uri, "--artifacts", str(artifacts),
        "--dataset", str(dataset_path(artifacts)), "--lineage-url", PRIVACY_STORE_URL],
        env, logs / "retrain_server.log")
    stop = threading.Event()  # never set: SIGTERM and Ctrl-C end the run as KeyboardInterrupt
    stop_on_sigterm()
    try:
        print(f"starting Kafka on {broker.bootstrap} (data in {broker.data_dir})", flush=True)
        broker.start()
        asyncio.run(ensure_topics(
            {"bootstrap_servers": broker.bootstrap},
            [_env("AGOGOSML_READER_INPUT_STREAM", "agogosml.input"),
             _env("AGOGOSML_READER_DEADLETTER_STREAM", "agogosml.deadletter"),
             _env("AGOGOSML_WRITER_OUTPUT_STREAM", "agogosml.output"), SHADOW_STREAM,
             _env("AGOGOSML_MONITOR_LABELS_STREAM", LABELS_STREAM)],
        ))
        subprocess.run([sys.executable, "-m", "agogosml.cli", "train-demo", "--if-missing",
                        "--tracking-uri", tracking_uri, "--artifacts", str(artifacts),
                        "--privacy-policy", env["AGOGOSML_READER_PRIVACY_POLICY_PATH"],
                        "--keyring", env["AGOGOSML_READER_PRIVACY_KEYRING_PATH"],
                        "--lineage-url", PRIVACY_STORE_URL],
                       check=True)
        print(f"starting the retrain server on {local_url(RETRAIN_PORT)}", flush=True)
        retrainer.start()
        for service in services:
            print(f"starting {service.label} on {service.url} (log: {service.log_path})",
                  flush=True)
            service.start()
            service.wait_ready()
        producer.start()
        _print_guide(broker.bootstrap, services)
        Supervisor([BrokerChild(broker), retrainer, *services, producer]).run(stop)
    except KeyboardInterrupt:
        pass
    finally:
        print("\nstopping…", flush=True)
        producer.terminate()
        for service in reversed(services):
            service.terminate()
        retrainer.terminate()
        broker.stop()
        print("stopped", flush=True)


def stop_on_sigterm() -> None:
    """SIGTERM stops the stack as Ctrl-C does, and any SIGTERM after it is ignored, so the
    shutdown runs to its end. A handler that set a threading.Event hung the stack for good
    when two SIGTERMs came at once (a process group's): the second ran inside the first's
    Event.set and waited for the lock the first held."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        signal.signal(signum, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handle)


def _print_guide(bootstrap: str, services: list[ServiceProcess]) -> None:
    app = next(s for s in services if s.label == "app")
    monitor = next(s for s in services if s.label == "monitor")
    drifting = _env("AGOGOSML_DEMO_DRIFT_AFTER", "")
    drift_line = (f"the producer shifts distance_from_home_km from event {drifting} on: watch "
                  "the drift panel, the trigger log and var/logs/retrain_server.log"
                  if drifting else
                  "inject a drift to watch the loop act: make run DRIFT_AFTER=2000")
    output = _env("AGOGOSML_WRITER_OUTPUT_STREAM", "agogosml.output")
    shadow_line = ""
    if any(s.label == "preview_app" for s in services):
        shadow_line = (f"\n  shadow scores:  .venv/bin/agogosml tail {SHADOW_STREAM}"
                       "   (agreement: agogosml_app_shadow_* on the preview app)")
    print(f"""
agogosml is running: demo transactions flow Kafka -> input_reader -> app -> output_writer,
and the monitor stores, watches and acts on what comes out.

  dashboard:  {monitor.url}/     (live inputs, predictions, drift, performance, triggers)
    {drift_line}
    labels arrive on agogosml.labels 5 s after each event; more by hand:
    curl -s {monitor.url}/v1/labels -H "authorization: Bearer $(cat {TOKEN_FILE})" \\
      -H 'content-type: application/json' \\
      -d '{{"labels": [{{"id": "tx-11-000000001", "label": 0}}]}}'

  score one record:
    curl -s {app.url}/predict -H 'content-type: application/json' \\
      -d '{{"amount": 912.5, "hour": 3, "distance_from_home_km": 140.0,
           "transactions_last_24h": 9, "merchant_category": "jewelry", "channel": "online",
           "country": "NG", "card_present": false}}'

  /predict and OIP take no API key here (set AGOGOSML_APP_API_KEY to require one; the
  Helm chart requires one by default).
  the pipeline hop takes the run's token (made fresh by each run, kept in {TOKEN_FILE}):
    curl -s {app.url}/v1/batches -H "authorization: Bearer $(cat {TOKEN_FILE})" \\
      -H 'content-type: application/json' -d '{{"events": []}}'

  metrics:   {"  ".join(f"{s.url}/metrics" for s in services)}
  readiness: {"  ".join(f"{s.url}/readyz" for s in services)}
  scored events:  .venv/bin/agogosml tail {output}   (Kafka on {bootstrap})
  dead letters:   .venv/bin/agogosml tail agogosml.deadletter
  logs:           {VAR / "logs"}/{shadow_line}

A process that dies is reported here and restarted (up to 5 times in a row).
Press Ctrl-C to stop everything.""", flush=True)


if __name__ == "__main__":
    main()
