"""Cold start: each service's time from process start to ready, and the first event after
idle, as KEDA from zero would have it.

    python -m bench.coldstart                   # this tree, 5 rounds
    python -m bench.coldstart --baseline DIR    # and DIR's agogosml (e.g. `git archive`
                                                # of an older commit), interleaved

Everything runs on this machine: one Kafka broker, MLflow on SQLite with the demo model
(bench.stack). Per round, and per tree, in fresh processes:

  writer, app, reader, monitor   from Popen to the first answer of /readyz (`up`: the
                                 HTTP server listens) and to its first 200 (`ready`),
                                 and the CPU the process used by then (`ready CPU`);
                                 each started with what it depends on already ready
  first event, reader from zero  one event is waiting on a fresh input topic, writer and
                                 app are ready (KEDA scaled them on their own triggers or
                                 they never went to zero), then the reader is started:
                                 reader start -> the scored event appended to the output
                                 topic (LogAppendTime)
  first event, all from zero     the same event waiting, writer, app and reader started at
                                 once: start -> output

Medians and min-max of the rounds. What is not measured, and comes on top in a cluster:
KEDA's polling (keda.pollingInterval), scheduling, image pull, and the consumer group's
initial rebalance delay (the local broker sets group.initial.rebalance.delay.ms=0, Kafka's
default is 3 s). Every tree runs its services with PYTHONSAFEPATH and PYTHONPATH=<tree>,
so only PYTHONPATH says which agogosml a service imports.

Measured on 2 shared cores under heavy other load (5 rounds, medians; before: skops.io
imported by MLflow's loader, after MLflow), wall ms / CPU ms to ready:

    writer   1 819 / 1 030      reader 2 991 / 1 450      monitor 16 399 / 7 820
    app     22 202 / 12 240  ->  17 613 / 10 240 (skops.io first: -0.5 to -3.3 s CPU
                                                  in each of the 5 paired rounds)
    first event, reader from zero   3 021 (the reader's own start, then ~30 ms)
    first event, all from zero     27 476 -> 24 952 (the app's start and model load)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson

from agogosml.demo.data import events
from agogosml.localstack.broker import KafkaBroker, free_port
from agogosml.localstack.processes import ServiceProcess
from agogosml.localstack.tokens import new_pipeline_token, pipeline_token_env
from agogosml.streaming.topics import ensure_topics
from bench.kafka_io import PARTITIONS, TopicCollector, Topics, create_topics, preload
from bench.procs import cpu_seconds
from bench.stack import (
    BENCH_TOKEN,
    REPO,
    SCHEMA,
    Infrastructure,
    forget_service_settings,
    start_infrastructure,
)

POLL_S = 0.01
"""How often /readyz is asked while a service starts: the resolution of the figures."""
READY_TIMEOUT_S = 120.0
OUTPUT_TIMEOUT_S = 120.0
MONITOR_TOKEN = new_pipeline_token()

Samples = dict[str, list[float]]
"""Milliseconds per measured thing, one per round."""


class Tree:
    """The agogosml a service imports: PYTHONPATH, and no implicit current directory."""

    def __init__(self, name: str, path: Path, workdir: Path) -> None:
        self.name = name
        self.env = {"PYTHONPATH": str(path), "PYTHONSAFEPATH": "1"}
        self.logs = workdir / "logs" / name.replace(" ", "-")

    def service(self, name: str, env: Mapping[str, str], label: str | None = None,
                port: int | None = None) -> ServiceProcess:
        port = port or free_port()
        prefix = {"output_writer": "AGOGOSML_WRITER_", "app": "AGOGOSML_APP_",
                  "input_reader": "AGOGOSML_READER_", "monitor": "AGOGOSML_MONITOR_"}[name]
        return ServiceProcess(name, port, {**self.env, f"{prefix}PORT": str(port), **env,
                                           **pipeline_token_env(BENCH_TOKEN)},
                              self.logs, label)


def writer_env(infra: Infrastructure, topics: Topics) -> dict[str, str]:
    return {"AGOGOSML_WRITER_SINK": "kafka",
            "AGOGOSML_WRITER_KAFKA_BOOTSTRAP_SERVERS": infra.broker.bootstrap,
            "AGOGOSML_WRITER_OUTPUT_STREAM": topics.output}


def app_env(infra: Infrastructure, writer: ServiceProcess) -> dict[str, str]:
    return {"AGOGOSML_APP_MODEL_URI": infra.model_uri,
            "AGOGOSML_APP_MLFLOW_TRACKING_URI": infra.tracking_uri,
            "AGOGOSML_APP_WRITER_URL": writer.url}


def reader_env(infra: Infrastructure, topics: Topics, app: ServiceProcess) -> dict[str, str]:
    return {"AGOGOSML_READER_SOURCE": "kafka",
            "AGOGOSML_READER_KAFKA_BOOTSTRAP_SERVERS": infra.broker.bootstrap,
            "AGOGOSML_READER_INPUT_STREAM": topics.input,
            "AGOGOSML_READER_DEADLETTER_STREAM": topics.deadletter,
            "AGOGOSML_READER_CONSUMER_GROUP": topics.group,
            "AGOGOSML_READER_APP_URL": app.url,
            "AGOGOSML_READER_SCHEMA_PATH": str(SCHEMA),
            "AGOGOSML_READER_ID_FIELD": "transaction_id",
            "AGOGOSML_READER_SUBJECT_FIELD": "customer_id"}


def labels_topic(topics: Topics) -> str:
    return f"{topics.output}.labels"


def monitor_env(infra: Infrastructure, topics: Topics, workdir: Path) -> dict[str, str]:
    return {"AGOGOSML_MONITOR_SOURCE": "kafka",
            "AGOGOSML_MONITOR_KAFKA_BOOTSTRAP_SERVERS": infra.broker.bootstrap,
            "AGOGOSML_MONITOR_OUTPUT_STREAM": topics.output,
            "AGOGOSML_MONITOR_LABELS_STREAM": labels_topic(topics),
            "AGOGOSML_MONITOR_CONSUMER_GROUP": f"{topics.group}.monitor",
            "AGOGOSML_MONITOR_TRACKING_URI": infra.tracking_uri,
            "AGOGOSML_MONITOR_STORE_URL": f"sqlite:///{workdir / 'monitor.db'}",
            "AGOGOSML_MONITOR_API_TOKEN": MONITOR_TOKEN}


def start_timed(service: ServiceProcess) -> dict[str, float]:
    """Start the service and wait until it is ready: ms to `up` (any answer of /readyz)
    and to `ready` (200), and the CPU ms it used by then (`ready CPU`: unlike wall time,
    hardly moved by other work on a shared machine)."""
    began = time.monotonic()
    service.start()
    found: dict[str, float] = {}
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() - began < READY_TIMEOUT_S:
            if service.exit_code() is not None:
                raise RuntimeError(f"{service.label} exited; see {service.log_path}")
            try:
                status = client.get(f"{service.url}/readyz").status_code
            except httpx.HTTPError:
                status = None
            now_ms = (time.monotonic() - began) * 1000
            if status is not None:
                found.setdefault("up", now_ms)
            if status == 200:
                found["ready"] = now_ms
                found["ready CPU"] = cpu_seconds(service.pid or 0) * 1000
                return found
            time.sleep(POLL_S)  # polling /readyz: the figure's resolution
    raise TimeoutError(f"{service.label} not ready after {READY_TIMEOUT_S}s; "
                       f"see {service.log_path}")


@contextmanager
def running(*services: ServiceProcess) -> Iterator[None]:
    try:
        yield
    finally:
        for service in reversed(services):
            service.terminate(timeout_s=30)


async def fresh_topics_with_one_event(infra: Infrastructure, scenario: str) -> tuple[Topics, str]:
    topics = Topics.fresh(scenario)
    await create_topics(infra.broker.bootstrap, topics)
    await ensure_topics({"bootstrap_servers": infra.broker.bootstrap}, [labels_topic(topics)],
                        PARTITIONS)
    [event] = events(1, seed=int(time.time()))
    event["transaction_id"] = f"coldstart-{time.monotonic_ns()}"
    await preload(infra.broker.bootstrap, topics.input, [orjson.dumps(event)])
    return topics, str(event["transaction_id"])


def first_output_ms(infra: Infrastructure, topics: Topics, event_id: str,
                    started_ms: float, on_poll: Callable[[], None]) -> float:
    """ms from `started_ms` (epoch) to the event's first append to the output topic."""

    async def wait() -> float:
        async with TopicCollector(infra.broker.bootstrap, topics.output) as output:
            records = await output.until_ids({event_id}, OUTPUT_TIMEOUT_S, on_poll)
        return min(record.timestamp_ms for record in records if record.id == event_id)

    return asyncio.run(wait()) - started_ms


def alive(*services: ServiceProcess) -> Callable[[], None]:
    def check() -> None:
        for service in services:
            if service.exit_code() is not None:
                raise RuntimeError(f"{service.label} exited; see {service.log_path}")
    return check


def services_round(tree: Tree, infra: Infrastructure, workdir: Path, samples: Samples) -> None:
    """Writer, then app, then reader (with one event waiting), each timed to ready; the
    event's way out once the reader started; then the monitor."""
    topics, event_id = asyncio.run(fresh_topics_with_one_event(infra, "coldstart"))
    writer = tree.service("output_writer", writer_env(infra, topics))
    app = tree.service("app", app_env(infra, writer))
    reader = tree.service("input_reader", reader_env(infra, topics, app))
    with running(writer, app, reader):
        for label, service in (("writer", writer), ("app", app)):
            for stage, ms in start_timed(service).items():
                samples.setdefault(f"{label} {stage}", []).append(ms)
        reader_started_ms = time.time() * 1000
        for stage, ms in start_timed(reader).items():
            samples.setdefault(f"reader {stage}", []).append(ms)
        samples.setdefault("first event, reader from zero", []).append(first_output_ms(
            infra, topics, event_id, reader_started_ms, alive(writer, app, reader)))
    monitor_dir = workdir / f"monitor-{time.monotonic_ns()}"
    monitor_dir.mkdir(parents=True)
    monitor = tree.service("monitor", monitor_env(infra, topics, monitor_dir))
    with running(monitor):
        for stage, ms in start_timed(monitor).items():
            samples.setdefault(f"monitor {stage}", []).append(ms)


def all_from_zero_round(tree: Tree, infra: Infrastructure, samples: Samples) -> None:
    topics, event_id = asyncio.run(fresh_topics_with_one_event(infra, "coldstart-all"))
    writer = tree.service("output_writer", writer_env(infra, topics))
    app = tree.service("app", app_env(infra, writer))
    reader = tree.service("input_reader", reader_env(infra, topics, app))
    with running(writer, app, reader):
        started_ms = time.time() * 1000
        for service in (writer, app, reader):
            service.start()
        samples.setdefault("first event, all from zero", []).append(first_output_ms(
            infra, topics, event_id, started_ms, alive(writer, app, reader)))


ORDER = (*(f"{service} {stage}" for service in ("writer", "app", "reader", "monitor")
           for stage in ("up", "ready", "ready CPU")),
         "first event, reader from zero", "first event, all from zero")


def table(results: Mapping[str, Samples]) -> str:
    lines = [f"{'ms from process start (CPU: ms used)':<36} {'tree':>12} {'median':>8} {'min':>8} "
             f"{'max':>8}"]
    for key in ORDER:
        for name, samples in results.items():
            values = samples.get(key)
            if values:
                lines.append(f"{key:<36} {name:>12} {statistics.median(values):8.0f} "
                             f"{min(values):8.0f} {max(values):8.0f}")
    return "\n".join(lines)


def run(workdir: Path, trees: Sequence[Tree], rounds: int) -> dict[str, Samples]:
    broker = KafkaBroker(workdir / "kafka")
    try:
        infra = start_infrastructure(workdir, broker)
        print(f"Kafka on {broker.bootstrap}, model {infra.model_uri}", flush=True)
        results: dict[str, Samples] = {tree.name: {} for tree in trees}
        for number in range(1, rounds + 1):
            for tree in trees:  # interleaved, so that a busy moment weighs on every tree
                services_round(tree, infra, workdir, results[tree.name])
                all_from_zero_round(tree, infra, results[tree.name])
            print(f"round {number}/{rounds} done", flush=True)
        return results
    finally:
        broker.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, action="append", default=[],
                        help="a tree holding an older agogosml (repeatable)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the samples here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    forget_service_settings()
    workdir = Path(tempfile.mkdtemp(prefix="agogosml-coldstart-"))
    logging.basicConfig(filename=workdir / "bench.log", level=logging.WARNING)
    trees = [Tree("this tree", REPO, workdir)] + [
        Tree(path.name, path.resolve(), workdir) for path in args.baseline]
    try:
        results = run(workdir, trees, args.rounds)
    finally:
        if args.keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\ncold start, {args.rounds} rounds\n{table(results)}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
