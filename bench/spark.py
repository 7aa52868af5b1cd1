"""The Spark engine against the trio (input_reader -> app -> output_writer) on the same broker,
the same model and the same events, measured in the same run.

Run with `python -m bench.spark` (part of `make bench`; 16 minutes on a 2-core machine busy
with other work, most of it the Spark job's starts; `--quick` for fewer, shorter runs). Both
sides read the same demo events with the same contract (schema, id and subject fields) and
write scored events to a fresh output topic (LogAppendTime) on a single-node KRaft broker;
Spark runs in local[2] (a JVM and a Python worker per task) as `python -m
agogosml.engines.spark`, each run with a fresh checkpoint.

- throughput: one input topic pre-loaded with demo events, read from its start by every run
  (a fresh consumer group or checkpoint each time); events whose first copy was appended
  within `--run-seconds` of the first output record, per second. Runs interleaved.
- start-up: from the processes' start to the first output record's append, in the same
  throughput runs (the input is there from the start: this is the time to get going).
- latency: with the side running and warmed up (200 events through it), events at a steady
  `--rate` (1,000/s) for `--seconds`; from each input record's append (its Kafka timestamp,
  carried as the event's `time`) to its output record's append: p50 / p95 / p99 / max.

Medians and spreads (min-max) over `--reps` runs are printed, then one line on when to pick
which. The machine may be shared: read the load average printed with the results.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from agogosml.localstack.broker import KafkaBroker
from bench.kafka_io import (
    POLL_INTERVAL_S,
    SeenRecord,
    TopicCollector,
    Topics,
    create_topics,
    preload,
    produce_paced,
)
from bench.pipeline import Workload, busy_note, machine
from bench.report import latencies, percentile, windowed
from bench.stack import (
    SCHEMA,
    ConsumerSide,
    Infrastructure,
    Pipeline,
    forget_service_settings,
    start_infrastructure,
)

SPARK_PREFIX = "AGOGOSML_SPARK_"
FIRST_OUTPUT_TIMEOUT_S = 400.0
"""A cold JVM and the model loaded in every Python worker, on a possibly busy machine."""
OUTPUT_TIMEOUT_S = 300.0
WINDOW_MARGIN_S = 1.0
MASTER = "local[2]"


class SparkSide:
    """The Spark job as a child process in its own process group (driver, JVM, workers)."""

    def __init__(self, infra: Infrastructure, topics: Topics, log_dir: Path) -> None:
        self.log_path = log_dir / "spark.log"
        self.env = {**os.environ,
                    f"{SPARK_PREFIX}KAFKA_BOOTSTRAP_SERVERS": infra.broker.bootstrap,
                    f"{SPARK_PREFIX}INPUT_STREAM": topics.input,
                    f"{SPARK_PREFIX}OUTPUT_STREAM": topics.output,
                    f"{SPARK_PREFIX}DEADLETTER_STREAM": topics.deadletter,
                    f"{SPARK_PREFIX}CHECKPOINT_LOCATION": str(log_dir / "checkpoint"),
                    f"{SPARK_PREFIX}SCHEMA_PATH": str(SCHEMA),
                    f"{SPARK_PREFIX}ID_FIELD": "transaction_id",
                    f"{SPARK_PREFIX}SUBJECT_FIELD": "customer_id",
                    f"{SPARK_PREFIX}MODEL_URI": infra.model_uri,
                    f"{SPARK_PREFIX}MLFLOW_TRACKING_URI": infra.tracking_uri,
                    f"{SPARK_PREFIX}MASTER": MASTER,
                    f"{SPARK_PREFIX}SPARK_CONF": orjson.dumps(
                        {"spark.ui.enabled": "false"}).decode()}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "agogosml.engines.spark"], env=self.env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"the Spark job exited ({self.process.returncode}); see "
                               f"{self.log_path}")

    def pids(self) -> dict[str, int]:
        return {} if self.process is None else {"spark": self.process.pid}

    def metrics(self) -> dict[str, float]:
        return {}

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


@dataclass(frozen=True)
class Engine:
    label: str
    slug: str
    side: Callable[[Infrastructure, Topics, Path], ConsumerSide]


TRIO = Engine("trio (reader -> app -> writer)", "trio",
              lambda infra, topics, logs: Pipeline(infra, topics, logs, {}))
SPARK = Engine(f"Spark job ({MASTER})", "spark", SparkSide)


@dataclass(frozen=True)
class Timed:
    rate: float
    short: bool
    startup_s: float


@dataclass(frozen=True)
class Paced:
    sent_rate: float
    latencies_ms: list[int]


class Bench:
    def __init__(self, infra: Infrastructure, workload: Workload, workdir: Path,
                 args: argparse.Namespace) -> None:
        self.infra = infra
        self.bootstrap = infra.broker.bootstrap
        self.workload = workload
        self.workdir = workdir
        self.args = args
        self.input_topic = f"bench.spark.{uuid.uuid4().hex[:8]}.input"
        self._runs = 0

    def _log_dir(self, engine: Engine) -> Path:
        self._runs += 1
        return self.workdir / "logs" / f"{self._runs:02d}-{engine.slug}"

    def load(self) -> None:
        topics = Topics(self.input_topic, f"{self.input_topic}.unused",
                        f"{self.input_topic}.unused-dl", "")
        asyncio.run(create_topics(self.bootstrap, topics))
        values, _ = self.workload.slice(0, self.args.events)
        asyncio.run(preload(self.bootstrap, self.input_topic, values))

    def timed(self, engine: Engine) -> Timed:
        topics = Topics.fresh(engine.slug, self.input_topic)
        asyncio.run(create_topics(self.bootstrap, topics))
        side = engine.side(self.infra, topics, self._log_dir(engine))
        started_ms = time.time() * 1000
        try:
            side.start()
            records = asyncio.run(self._window(topics, side))
        finally:
            side.stop()
        counted, _, rate, short = windowed(records, self.args.run_seconds)
        if counted < 2:
            raise RuntimeError(f"{engine.label}: {counted} events in the window")
        first = min(record.timestamp_ms for record in records)
        return Timed(rate, short, (first - started_ms) / 1000)

    async def _window(self, topics: Topics, side: ConsumerSide) -> list[SeenRecord]:
        """Wait for the first output, then the window (and a margin), or until every loaded
        event is out; return what the output topic holds."""
        async with TopicCollector(self.bootstrap, topics.output) as output:
            deadline = time.monotonic() + FIRST_OUTPUT_TIMEOUT_S
            while not await output.total():
                side.check_alive()
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no output after {FIRST_OUTPUT_TIMEOUT_S:.0f} s")
                await asyncio.sleep(POLL_INTERVAL_S)  # polling the output's end offsets
            until = time.monotonic() + self.args.run_seconds + WINDOW_MARGIN_S
            while time.monotonic() < until and await output.total() < self.args.events:
                side.check_alive()
                await asyncio.sleep(POLL_INTERVAL_S)  # the window's duration
            return await output.read_all()

    def paced(self, engine: Engine) -> Paced:
        values, wanted = self.workload.first(round(self.args.rate * self.args.seconds))
        topics = Topics.fresh(f"{engine.slug}-paced")
        asyncio.run(create_topics(self.bootstrap, topics))
        side = engine.side(self.infra, topics, self._log_dir(engine))
        try:
            side.start()
            return asyncio.run(self._paced(topics, values, wanted, side))
        finally:
            side.stop()

    async def _paced(self, topics: Topics, values: list[bytes], wanted: set[str],
                     side: ConsumerSide) -> Paced:
        await preload(self.bootstrap, topics.input, self.workload.warmup_values)
        async with TopicCollector(self.bootstrap, topics.output) as output:
            await output.until_ids(self.workload.warmup_ids, FIRST_OUTPUT_TIMEOUT_S,
                                   side.check_alive)
            achieved = await produce_paced(self.bootstrap, topics.input, values,
                                           self.args.rate)
            records = await output.until_ids(wanted, OUTPUT_TIMEOUT_S, side.check_alive)
        return Paced(achieved, latencies(records, wanted))


def _spread(values: Sequence[float]) -> str:
    middle = statistics.median(values)
    relative = (max(values) - min(values)) / middle if middle else 0.0
    return (f"{middle:>9.1f}{min(values):>9.1f}{max(values):>9.1f}{relative:>8.0%}  "
            + " ".join(f"{value:.1f}" for value in values))


def report(timed: dict[Engine, list[Timed]], paced: dict[Engine, Paced],
           args: argparse.Namespace) -> str:
    header = f"{'':<34}{'median':>9}{'min':>9}{'max':>9}{'spread':>8}  every run, in order"
    lines = [f"throughput (events/s; pre-loaded input of {args.events} events, window "
             f"{args.run_seconds:.0f} s from the first output, {args.reps} interleaved runs)",
             header, "-" * 100]
    lines += [f"{engine.label:<34}{_spread([run.rate for run in runs])}"
              + (" (output ended early)" if any(run.short for run in runs) else "")
              for engine, runs in timed.items()]
    lines += ["", "start-up (s, from the processes' start to the first output record)",
              header, "-" * 100]
    lines += [f"{engine.label:<34}{_spread([run.startup_s for run in runs])}"
              for engine, runs in timed.items()]
    lines += ["", f"latency at a steady {args.rate:.0f} events/s for {args.seconds:.0f} s "
              "(ms from the input append to the output append)",
              f"{'':<34}{'sent/s':>9}{'p50':>7}{'p95':>7}{'p99':>7}{'max':>7}", "-" * 71]
    for engine, run in paced.items():
        cells = "".join(f"{percentile(run.latencies_ms, share):>7}"
                        for share in (0.50, 0.95, 0.99))
        lines.append(f"{engine.label:<34}{run.sent_rate:>9.0f}{cells}"
                     f"{run.latencies_ms[-1]:>7}")
    lines += ["", verdict(timed, paced)]
    return "\n".join(lines)


def verdict(timed: dict[Engine, list[Timed]], paced: dict[Engine, Paced]) -> str:
    """One line: when to pick which, from this run's figures."""
    rate = {engine: statistics.median(run.rate for run in runs)
            for engine, runs in timed.items()}
    startup = {engine: statistics.median(run.startup_s for run in runs)
               for engine, runs in timed.items()}
    p99 = {engine: percentile(run.latencies_ms, 0.99) for engine, run in paced.items()}
    if rate[SPARK] > rate[TRIO]:
        spark = (f"Spark for throughput ({rate[SPARK] / rate[TRIO]:.1f}x here: "
                 f"{rate[SPARK]:.0f} vs {rate[TRIO]:.0f} events/s) and to spread a backlog "
                 "over a cluster's executors")
    else:
        spark = (f"Spark only where a Spark cluster already runs, to spread a backlog over its "
                 f"executors (on one machine the trio is {rate[TRIO] / rate[SPARK]:.1f}x "
                 f"faster: {rate[TRIO]:.0f} vs {rate[SPARK]:.0f} events/s)")
    return (f"when to pick which: the trio for latency and quick starts (p99 {p99[TRIO]} ms vs "
            f"{p99[SPARK]} ms at the paced rate, first output after {startup[TRIO]:.0f} s vs "
            f"{startup[SPARK]:.0f} s), scaling to zero and blue/green; {spark}.")


def run_all(bench: Bench, args: argparse.Namespace, clock: Callable[[], str]) -> str:
    bench.load()
    print(f"{clock()} the input topic holds {args.events} events", flush=True)
    engines = (TRIO, SPARK)
    timed: dict[Engine, list[Timed]] = {engine: [] for engine in engines}
    for rep in range(1, args.reps + 1):
        for engine in engines:
            run = bench.timed(engine)
            timed[engine].append(run)
            print(f"{clock()} {engine.label}, run {rep}/{args.reps}: {run.rate:.0f} events/s, "
                  f"first output after {run.startup_s:.1f} s", flush=True)
    paced: dict[Engine, Paced] = {}
    for engine in engines:
        paced[engine] = bench.paced(engine)
        print(f"{clock()} {engine.label} at {args.rate:.0f}/s: p99 "
              f"{percentile(paced[engine].latencies_ms, 0.99)} ms", flush=True)
    return report(timed, paced, args)


FULL = {"reps": 3, "run_seconds": 6.0, "seconds": 10.0, "events": 200_000}
QUICK = {"reps": 2, "run_seconds": 4.0, "seconds": 4.0, "events": 40_000}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.spark",
                                     description="the Spark engine against the trio")
    parser.add_argument("--quick", action="store_true",
                        help="short runs: " + ", ".join(f"{k}={v}" for k, v in QUICK.items()))
    parser.add_argument("--reps", type=int, help=f"interleaved throughput runs per engine "
                                                 f"(default {FULL['reps']})")
    parser.add_argument("--run-seconds", type=float, help="measured throughput window")
    parser.add_argument("--events", type=int, help="events pre-loaded for the throughput runs")
    parser.add_argument("--rate", type=float, default=1_000.0, help="events/s, paced runs")
    parser.add_argument("--seconds", type=float, help="paced sending time")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def _interrupt(signum: int, _: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    forget_service_settings()
    for name in [name for name in os.environ if name.startswith(SPARK_PREFIX)]:
        del os.environ[name]
    began = time.monotonic()

    def clock() -> str:
        return f"[{time.monotonic() - began:5.0f}s]"

    print(f"agogosml Spark engine vs trio\n{machine()}{busy_note()}\n", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="agogosml-bench-spark-"))
    logging.basicConfig(filename=workdir / "bench.log", level=logging.WARNING)
    keep = True
    broker = KafkaBroker(workdir / "kafka")
    try:
        workload = Workload(max(args.events, round(args.rate * args.seconds)))
        infra = start_infrastructure(workdir, broker)
        print(f"{clock()} Kafka on {broker.bootstrap}, model {infra.model_uri}", flush=True)
        result = run_all(Bench(infra, workload, workdir, args), args, clock)
        keep = args.keep
    except KeyboardInterrupt:
        keep = args.keep
        print("interrupted; every process the benchmark started was stopped", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        broker.stop()
        if keep:
            print(f"work directory (logs, broker data) kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n{result}\n\nfinished {machine()}\ntotal wall time "
          f"{time.monotonic() - began:.0f} s", flush=True)


if __name__ == "__main__":
    main()
